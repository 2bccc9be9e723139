#!/usr/bin/env bash
# Every test: the whole suite (unit, handler and integration tests, the storage conformance
# cases on redb and on a real PostgreSQL), then the integration tests that concern storage
# again with every gateway on PostgreSQL instead of a redb file. Extra arguments (e.g.
# --quiet) go to both cargo test runs.
#
#   scripts/deps.sh && scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test "$@"

# The modules whose tests create, change, count or end what the store keeps. The others
# (proxying, pages, forward auth, ...) do not depend on the backend, and a few read the redb
# file itself (durability, lookalikes, escalation).
storage_modules=(accounts:: lifecycle:: limits:: mail:: mail_limits:: oidc:: second_factor:: tokens:: tokens_ops::)
AUTHGATE_IT_STORAGE=postgres cargo test "$@" --test it -- "${storage_modules[@]}"
