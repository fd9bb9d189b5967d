"""Past one machine: the build and the service on a Ray cluster (``pip install 'legalsearch[scale]'``).

``cluster``  a local cluster bound to 127.0.0.1 (``--ray local``, tests) or a connection to an existing one
``shards``   the sharded model version: ``global/`` and ``shards/<k>/``, each a verified model folder
``build``    ``legalsearch train --ray``: global statistics merged once, shard artifacts as Ray tasks
``search``   candidates per shard merged and fused with ``ranking``'s own code

Nothing here is imported by the rest of the package: the base install does not need Ray.
"""
