#!/bin/sh
# One database per service, each owned by a role of the same name: a service
# can reach only its own data. Run once by the postgres image on an empty data
# directory (/docker-entrypoint-initdb.d), and by the Kubernetes StatefulSet
# the same way. SERVICE_DATABASES lists "name" words; each role's password is
# read from <NAME>_DB_PASSWORD (compose: local defaults; Kubernetes: a Secret).
set -eu

# Every password first, so that a missing one stops the script before any
# database exists (the image runs these scripts once: a half-done run stays).
for name in ${SERVICE_DATABASES}; do
    variable="$(echo "${name}" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
    printenv "${variable}" >/dev/null || {
        echo "postgres-init: ${variable} is not set" >&2
        exit 1
    }
done

for name in ${SERVICE_DATABASES}; do
    password="$(printenv "$(echo "${name}" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD")"
    # psql variables (:"name", :'password') quote safely whatever the value holds.
    psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres \
        -v name="${name}" -v password="${password}" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
