#!/usr/bin/env bash
# `forge migrate up` against `sqlx migrate run` (sqlx-cli) on the same generated migrations
# and the same server: the project's embedded development cluster, a fresh database per run.
#
#   bench/migrate_vs_sqlx.sh [FILES] [RUNS]      (defaults: 500 files, 10 runs)
#
# Tools it lacks (sqlx-cli, hyperfine) are installed with cargo under
# <target>/bench-tools, never into ~/.cargo. Everything it writes is under
# <target>/bench-migrate; the cluster it starts is stopped at the end.
set -euo pipefail

files=${1:-500}
runs=${2:-10}
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
tools=$target/bench-tools
work=$target/bench-migrate
project=$work/project
export PATH="$tools/bin:$PATH"

cargo build --release --quiet -p forge-cli --manifest-path "$repo/Cargo.toml"
forge=$target/release/forge
# The version the workspace links, so both tools speak the same sqlx.
if ! command -v sqlx >/dev/null; then
    cargo install sqlx-cli --version 0.8.6 --no-default-features --features postgres \
        --locked --root "$tools"
fi
if ! command -v hyperfine >/dev/null; then
    cargo install hyperfine --locked --root "$tools"
fi

rm -rf "$project" && mkdir -p "$project/migrations"
printf '[project]\nname = "bench"\n' >"$project/forge.toml"
# Readable by the postgres user: as root the cluster then lives in the project.
chmod 755 "$work" "$project"
for i in $(seq 1 "$files"); do
    n=$(printf '%04d' "$i")
    cat >"$project/migrations/${n}_create_t${n}.sql" <<SQL
-- Table $i of the benchmark: a table, an index and a few rows.
CREATE TABLE t$n (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id bigint NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX t${n}_owner_id_idx ON t$n (owner_id);
INSERT INTO t$n (owner_id, name) VALUES (1, 'first'), (2, 'it''s second'), (3, \$\$third; with a semicolon\$\$);
SQL
done

unset DATABASE_URL
url=$("$forge" db start --project "$project" 2>/dev/null)
trap '"$forge" db stop --project "$project" >/dev/null 2>&1 || true' EXIT
server=${url%/*}
psql=$("$forge" db status --project "$project" | sed -n 's/^server: .* in //p')/psql
[ -x "$psql" ] || psql=psql
fresh() { echo "$psql -q -X -d $server/postgres -c 'DROP DATABASE IF EXISTS $1 WITH (FORCE)' -c 'CREATE DATABASE $1'"; }

echo "$files migrations, $runs runs each, server $server ($(nproc) CPUs)"
hyperfine --warmup 1 --runs "$runs" --export-json "$work/results.json" \
    --prepare "$(fresh bench_forge)" -n "forge migrate up" \
    "DATABASE_URL=$server/bench_forge $forge migrate up --project $project" \
    --prepare "$(fresh bench_sqlx)" -n "sqlx migrate run" \
    "sqlx migrate run --source $project/migrations --database-url $server/bench_sqlx"

python3 - "$work/results.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
f, s = r["forge migrate up"], r["sqlx migrate run"]
# Medians and minimums too: on a shared machine a few slow runs (another process's
# fsyncs) swing the means.
for name, x in (("forge", f), ("sqlx", s)):
    print(f"{name:5} mean {x['mean']*1000:.0f} ± {x['stddev']*1000:.0f} ms, "
          f"median {x['median']*1000:.0f} ms, min {x['min']*1000:.0f} ms")
print(f"ratio forge/sqlx: mean {f['mean']/s['mean']:.2f}, median {f['median']/s['median']:.2f}, "
      f"min {f['min']/s['min']:.2f}")
PY
