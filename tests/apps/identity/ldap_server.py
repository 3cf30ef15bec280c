"""A real OpenLDAP server (slapd) for the LDAP tests: its own configuration (slapd.conf, mdb
back end) and its own LDIF data in a temporary folder, on a free port; killed at the end."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SLAPD = shutil.which("slapd") or ("/usr/sbin/slapd" if os.path.exists("/usr/sbin/slapd") else None)
SLAPADD = shutil.which("slapadd") or ("/usr/sbin/slapadd" if os.path.exists("/usr/sbin/slapadd") else None)
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = next((p for p in (Path("/usr/lib/ldap"), Path("/usr/lib/x86_64-linux-gnu/ldap"),
                               Path("/usr/lib/openldap")) if p.is_dir()), None)

SUFFIX = "dc=corp,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "root-secret"
SYNC_DN = f"cn=sync,ou=services,{SUFFIX}"
SYNC_PW = "sync-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"

CONF = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema
{modules}
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args

database mdb
maxsize 33554432
suffix "{suffix}"
rootdn "{rootdn}"
rootpw {rootpw}
directory {dir}/db
index objectClass eq
index uid,mail eq
lastmod on

access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to *
  by dn.exact="{syncdn}" read
  by self read
  by * none
"""


def person(uid: str, name: str, mail: str, password: str, extra: str = "") -> str:
    given, _, family = name.partition(" ")
    return (f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {name}\ngivenName: {given}\n"
            f"sn: {family or given}\nmail: {mail}\nuserPassword: {password}\n{extra}\n")


BASE_LDIF = f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: corp
o: Corp

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: ou=services,{SUFFIX}
objectClass: organizationalUnit
ou: services

dn: {SYNC_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: sync
userPassword: {SYNC_PW}

"""


@dataclass
class LdapServer:
    url: str
    dir: Path

    def admin(self):  # type: ignore[no-untyped-def]
        """An ldap3 connection as the directory's root, for the tests to change the directory."""
        from ldap3 import Connection, Server

        c = Connection(Server(self.url), user=ROOT_DN, password=ROOT_PW, auto_bind=True)
        return c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def slapd(ldif: str) -> Iterator[LdapServer]:
    if SLAPD is None or SLAPADD is None or not SCHEMA_DIR.is_dir():
        pytest.skip("slapd is not installed (scripts/slapd.sh installs Debian's slapd and ldap-utils)")
    d = Path(tempfile.mkdtemp(prefix="nexus-slapd-"))
    (d / "db").mkdir()
    modules = f"modulepath {MODULE_DIR}\nmoduleload back_mdb" if (MODULE_DIR and (MODULE_DIR / "back_mdb.la").exists()) \
        or (MODULE_DIR and any(MODULE_DIR.glob("back_mdb*"))) else ""
    (d / "slapd.conf").write_text(CONF.format(schema=SCHEMA_DIR, modules=modules, dir=d, suffix=SUFFIX,
                                              rootdn=ROOT_DN, rootpw=ROOT_PW, syncdn=SYNC_DN))
    (d / "data.ldif").write_text(BASE_LDIF + ldif)
    subprocess.run([SLAPADD, "-f", str(d / "slapd.conf"), "-l", str(d / "data.ldif")], check=True,
                   capture_output=True, timeout=60)
    port = _free_port()
    url = f"ldap://127.0.0.1:{port}"
    # -d 0: stay in the foreground (so that we own and can kill the process), log nothing.
    proc = subprocess.Popen([SLAPD, "-f", str(d / "slapd.conf"), "-h", url + "/", "-d", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("slapd exited: " + (proc.stderr.read().decode() if proc.stderr else ""))
                if time.monotonic() > deadline:
                    raise RuntimeError("slapd did not start") from None
                time.sleep(0.05)
        yield LdapServer(url, d)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        shutil.rmtree(d, ignore_errors=True)
