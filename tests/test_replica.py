"""Litestream's replica, as deploy/ ships it: encrypted with the backup key before it reaches the bucket,
restored only with that key, and a restore with a missing or wrong key changes nothing.

The real parts: Litestream v0.3.13 (npm, as `make drill` installs it), moto's S3 server, the shipped
deploy/litestream.yml, deploy/litestream, deploy/check-replica and deploy/restore-from-replica.
"""
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest
import requests

from fieldapp.ops.at_rest import AGE_HEADER, create_key

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
LITESTREAM = DEPLOY.parent / ".drill" / "npm" / "node_modules" / "@flydotio" / "litestream-linux-x64" / "litestream"
# A name that must never be readable in the bucket.
KNOWN_NAME = "Ofc. Zebulon Quartermaine"

pytestmark = pytest.mark.skipif(not LITESTREAM.exists(), reason="the Litestream binary is not installed here;"
                                " .ci/run and `make drill` install it into .drill/npm")


def instance_env(folder, endpoint, bucket, key):
    """An instance folder and the deploy scripts' environment for it, as /etc/fieldapp/fieldapp.env sets it."""
    instance = folder / "instance"
    instance.mkdir(mode=0o700, parents=True)
    env_file = folder / "fieldapp.env"
    env_file.write_text("\n".join([
        f"FIELDAPP_INSTANCE_PATH={instance}", f"FIELDAPP_BACKUP_KEY_FILE={key}", "FIELDAPP_LOG_LEVEL=ERROR",
        f"LITESTREAM_BUCKET={bucket}", f"LITESTREAM_ENDPOINT={endpoint}", "LITESTREAM_REGION=us-east-1",
        "LITESTREAM_FORCE_PATH_STYLE=true", "LITESTREAM_ACCESS_KEY_ID=test", "LITESTREAM_SECRET_ACCESS_KEY=test", ""]))
    env = {"PATH": os.environ["PATH"], "HOME": str(folder), "FIELDAPP_ENV_FILE": str(env_file),
           "LITESTREAM_CONFIG": str(DEPLOY / "litestream.yml"), "LITESTREAM_BIN": str(LITESTREAM),
           "FIELDAPP_HOME": str(DEPLOY.parent), "FIELDAPP_CONTENT_DIR": str(Path(__file__).parent / "content_fixtures" / "good")}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return instance, env


def bucket_objects(endpoint, bucket):
    """{key: bytes} of every object in the bucket, read with an S3 client (boto3) as anyone with the bucket could."""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                      aws_secret_access_key="test")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def census(database):
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for (t,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_litestream%' ESCAPE '\\'")}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def replica(tmp_path_factory, s3_server, migrated):
    """A database with KNOWN_NAME in it, replicated by Litestream to a fresh bucket and stopped:
    (folder, bucket, key file, the database's table counts)."""
    folder = tmp_path_factory.mktemp("replicated")
    bucket = f"fieldapp-{uuid.uuid4().hex[:12]}"
    requests.put(f"{s3_server}/{bucket}", timeout=10).raise_for_status()
    key = folder / "backup.key"
    create_key(key)
    instance, env = instance_env(folder, s3_server, bucket, key)
    database = instance / "fieldapp.db"
    shutil.copyfile(migrated, database)
    conn = sqlite3.connect(database)
    conn.execute("INSERT INTO users (username, display_name, role, password_hash, created_at)"
                 " VALUES ('ofc.quartermaine', ?, 'cit', 'x', 0)", [KNOWN_NAME])
    conn.commit()
    process = subprocess.Popen([str(DEPLOY / "litestream"), "replicate", "-config", env["LITESTREAM_CONFIG"]], env={
        **env, **dict(line.split("=", 1) for line in Path(env["FIELDAPP_ENV_FILE"]).read_text().split())},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not any("/wal/" in k for k in bucket_objects(s3_server, bucket)):
            assert time.monotonic() < deadline and process.poll() is None, "Litestream wrote nothing to the bucket"
            time.sleep(0.2)
        time.sleep(1.5)  # one more sync interval
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    conn.close()
    return folder, bucket, key, census(database)


def test_the_bucket_holds_no_name_in_clear(replica, s3_server):
    folder, bucket, _, _ = replica
    objects = bucket_objects(s3_server, bucket)
    assert any("/snapshots/" in k for k in objects) and any("/wal/" in k for k in objects)
    for key, data in objects.items():
        assert data.startswith(AGE_HEADER), f"{key} is not encrypted"
        assert KNOWN_NAME.encode() not in data and b"ofc.quartermaine" not in data, key
    assert KNOWN_NAME.encode() in (folder / "instance" / "fieldapp.db").read_bytes()  # it was there to leak


def test_check_replica_passes_once_the_encrypted_replica_exists(replica, s3_server, tmp_path):
    folder, bucket, key, _ = replica
    _, env = instance_env(tmp_path, s3_server, bucket, key)
    (tmp_path / "fieldapp.env").write_text((folder / "fieldapp.env").read_text())  # the replicated instance's own
    result = subprocess.run([str(DEPLOY / "check-replica")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "check-replica: ok, 1 generation(s)" in result.stdout, result.stderr


def test_restore_with_the_key_brings_every_row_back(replica, s3_server, tmp_path):
    _, bucket, key, before = replica
    instance, env = instance_env(tmp_path, s3_server, bucket, key)
    result = subprocess.run([str(DEPLOY / "restore-from-replica"), "--at", "2026-11-29T03:14:00Z"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    after = census(instance / "fieldapp.db")
    assert after.pop("audit_log") == before.pop("audit_log") + 1  # `flask restored` records itself
    after.pop("sqlite_sequence"), before.pop("sqlite_sequence")
    assert after == before
    conn = sqlite3.connect(instance / "fieldapp.db")
    assert conn.execute("SELECT display_name FROM users WHERE username = 'ofc.quartermaine'").fetchone() == (KNOWN_NAME,)
    conn.close()


@pytest.mark.parametrize("key_problem", ["wrong", "missing"])
def test_restore_without_the_right_key_says_so_and_changes_nothing(replica, s3_server, tmp_path, key_problem):
    _, bucket, _, _ = replica
    key = tmp_path / "backup.key"
    if key_problem == "wrong":
        create_key(key)  # a key, but not the one the replica was encrypted with
    instance, env = instance_env(tmp_path, s3_server, bucket, key)
    (instance / "fieldapp.db").write_bytes(b"the database as it was before the restore")
    result = subprocess.run([str(DEPLOY / "restore-from-replica"), "--at", "2026-11-29T03:14:00Z"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    expected = "THE BACKUP KEY IS WRONG" if key_problem == "wrong" else f"cannot read the backup key {key}"
    assert expected in result.stderr and "Nothing was changed" in result.stderr, result.stderr
    assert sorted(p.name for p in instance.iterdir()) == ["fieldapp.db"]
    assert (instance / "fieldapp.db").read_bytes() == b"the database as it was before the restore"


@pytest.mark.parametrize("at", ["yesterday", "2099-01-01T00:00:00Z"])
def test_restore_with_a_bad_time_says_so_and_changes_nothing(replica, s3_server, tmp_path, at):
    _, bucket, key, _ = replica
    instance, env = instance_env(tmp_path, s3_server, bucket, key)
    (instance / "fieldapp.db").write_bytes(b"the database as it was before the restore")
    result = subprocess.run([str(DEPLOY / "restore-from-replica"), "--at", at], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "Nothing was changed" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in instance.iterdir()) == ["fieldapp.db"]
    assert (instance / "fieldapp.db").read_bytes() == b"the database as it was before the restore"
