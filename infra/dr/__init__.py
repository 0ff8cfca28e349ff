"""Disaster recovery: back up every service's database at one instant, restore, drill.

Modules, from the bottom up::

    snapshot   pg_basebackup / pg_verifybackup of the cluster; the files put back
    offsets    the analytics consumer groups' offsets, recorded and rewound
    commands   backup and restore: the steps in order, the manifest
    traffic    the drill's client: links, clicks and stats through the gateway
    drill      lose the databases for real, restore, measure RTO and RPO
    report     the figures, into docs/disaster-recovery.md
    __main__   python -m infra.dr backup|restore|drill

The plan, and the latest drill's figures: docs/disaster-recovery.md.
"""
