"""The whole system as local processes on 127.0.0.1, without Docker.

``make dev`` runs ``python -m infra.devstack up`` and ``make down`` runs ``down``.
The pytest fixtures reuse the same launchers, so tests run what developers run.

Modules, from the bottom up::

    procfs      what /proc says about a PID: argv, liveness, children, memory
    managed     DevstackError, ports, ManagedProcess (stop/pause by PID)
    postgres    initdb + postgres as a foreground child; roles and databases
    processes   the launchers to import: Postgres, Redis, tansu, our Python services
    state       .devstack/: data, logs, pid files
    stack       ports, services, their settings and start order
    __main__    the up / down / status commands
"""
