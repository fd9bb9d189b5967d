"""Past one machine: the build and the service on a Ray cluster (``pip install 'legalsearch[scale]'``).

``cluster``  a local cluster bound to 127.0.0.1 (``--ray local``, tests) or a connection to an existing one

Nothing here is imported by the rest of the package: the base install does not need Ray.
"""
