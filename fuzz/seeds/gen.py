#!/usr/bin/env python3
"""Writes the in-tree seed corpus, fuzz/corpus/<target>/, from scratch (docs/testing.md, "Fuzzing").

Small, hand-made inputs that reach the interesting paths of each target quickly: layer tars with
whiteouts, opaque markers, links, devices and the escape tricks the unpacker must refuse; real
manifest/index/config shapes; CNI results of each spec version; SPDY frames with headers
compressed against the SPDY/3 dictionary; monitor protocol lines and argument vectors. Run it
again after changing it: `python3 fuzz/seeds/gen.py` (needs only python3 and the zstd CLI).
"""

import gzip
import io
import json
import os
import shutil
import struct
import subprocess
import tarfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(HERE), "corpus")
DICTIONARY = os.path.join(HERE, "..", "..", "src", "streaming", "spdy", "dictionary.bin")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- layer tars -----------------------------------------------------------------------------


def tar(entries, fmt=tarfile.PAX_FORMAT):
    """entries: (name, kind, extra) with kind one of file/dir/sym/link/chr/blk/fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            data = None
            if kind == "file":
                data = extra if isinstance(extra, bytes) else b"content of " + name.encode()
                info.size = len(data)
                info.mode = 0o644
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
            elif kind == "sym":
                info.type = tarfile.SYMTYPE
                info.linkname = extra
            elif kind == "link":
                info.type = tarfile.LNKTYPE
                info.linkname = extra
            elif kind in ("chr", "blk"):
                info.type = tarfile.CHRTYPE if kind == "chr" else tarfile.BLKTYPE
                info.devmajor, info.devminor = extra
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            if isinstance(extra, dict):
                info.pax_headers = extra
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def layers():
    basic = tar([
        ("etc", "dir", None),
        ("etc/hostname", "file", None),
        ("etc/alias", "sym", "hostname"),
        ("etc/hard", "link", "etc/hostname"),
        ("dev", "dir", None),
        ("dev/null", "chr", (1, 3)),
        ("dev/loop0", "blk", (7, 0)),
        ("run", "dir", None),
        ("run/pipe", "fifo", None),
        ("usr/lib/deep/file", "file", None),
    ])
    write("unpack_layer", "basic.tar", basic)
    write("unpack_layer", "whiteouts.tar", tar([
        ("a", "dir", None),
        ("a/.wh..wh..opq", "file", b""),
        ("a/kept", "file", None),
        (".wh.gone", "file", b""),
        ("b/.wh.c", "file", b""),
        (".wh..wh.plnk", "file", b""),
        ("d/.wh..wh..opq", "file", b""),
    ]))
    write("unpack_layer", "escapes.tar", tar([
        ("../bait", "file", b"pwned"),
        ("/abs", "file", b"pwned"),
        ("up", "sym", "../outside"),
        ("up/file", "file", b"pwned"),
        ("up/new", "file", b"pwned"),
        ("root", "sym", "/"),
        ("root/tmp/pwned", "file", b"pwned"),
        ("hl", "link", "../bait"),
        ("hl2", "link", "up/file"),
        ("x/../../bait", "file", b"pwned"),
        ("./.././outside/dir/p", "dir", None),
    ]))
    write("unpack_layer", "replace.tar", tar([
        ("d", "dir", None),
        ("d/f", "file", None),
        ("d", "file", b"now a file"),
        ("s", "sym", "d"),
        ("s", "dir", None),
        ("f", "file", None),
        ("f", "link", "d"),
        ("l", "link", "missing"),
        (".wh.d", "file", b""),
        ("d/.wh.f", "file", b""),
    ]))
    write("unpack_layer", "gnu-longname.tar", tar([
        ("long/" + "n" * 150 + "/file", "file", None),
        ("long/" + "l" * 120, "sym", "t" * 200),
    ], fmt=tarfile.GNU_FORMAT))
    write("unpack_layer", "pax.tar", tar([
        ("paxfile", "file", {"path": "renamed/by/pax", "SCHILY.xattr.user.k": "v",
                             "uid": "100000", "gid": "100000", "mtime": "1.5"}),
        ("xattr", "file", {"SCHILY.xattr.trusted.overlay.opaque": "y",
                           "SCHILY.xattr.security.capability": "\x01"}),
    ]))
    write("unpack_layer", "basic.tar.gz", gzip.compress(basic, mtime=0))
    zst = subprocess.run(["zstd", "-q", "-c", "-19"], input=basic, capture_output=True, check=True)
    write("unpack_layer", "basic.tar.zst", zst.stdout)
    write("unpack_layer", "empty.tar", b"\0" * 1024)


# --- manifests, indexes, configs, references ------------------------------------------------

D = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


def images():
    oci_manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D, "size": 7023},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 32654},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": D, "size": 16724,
             "annotations": {"org.opencontainers.image.title": "x"}},
        ],
        "annotations": {"com.example.key": "value"},
    }
    docker_manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469, "digest": D},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2, "digest": D2}],
    }
    oci_index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D, "size": 7143,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D2, "size": 7682,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D2, "size": 1,
             "platform": {"architecture": "unknown", "os": "unknown"}},
        ],
    }
    docker_list = dict(oci_index, mediaType="application/vnd.docker.distribution.manifest.list.v2+json")
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"User": "1000:1000", "Env": ["PATH=/usr/bin"], "Entrypoint": ["/bin/sh"],
                   "Cmd": ["-c", "true"], "WorkingDir": "/", "ExposedPorts": {"80/tcp": {}},
                   "Labels": {"a": "b"}, "StopSignal": "SIGTERM"},
        "rootfs": {"type": "layers", "diff_ids": [D, D2]},
        "history": [{"created_by": "ADD file", "empty_layer": False}],
    }
    for name, doc in [("oci-manifest.json", oci_manifest), ("docker-manifest.json", docker_manifest),
                      ("oci-index.json", oci_index), ("docker-list.json", docker_list),
                      ("config.json", config),
                      ("config-squashfs.json", dict(config, rootfs={"type": "squashfs", "diff_ids": []}))]:
        write("image_manifest", name, json.dumps(doc, indent=1))
    write("image_manifest", "schema1.json", '{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}')

    for i, ref in enumerate([
        "busybox", "library/busybox:1.36", "docker.io/library/busybox:latest",
        "index.docker.io/foo", "localhost:5000/a/b_c__d-e.f:v1.0-rc_1",
        "registry.example/ns/img@" + D, "r.example/img:tag@sha512:" + "c" * 128,
        "[::1]:5000/img", "[fe80::1%eth0]/x", "LOCALHOST/x", "a" * 64,
        "localhost/" + "x" * 250, "x:" + "t" * 129, "img@sha256:ABC", "http://x/y",
        "a//b", "a/-b", "a__b/c---d", "127.0.0.1:5000/x:1",
    ]):
        write("image_reference", "ref%02d" % i, ref)


# --- CNI results ------------------------------------------------------------------------------


def cni():
    r100 = {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "cni0", "mac": "00:11:22:33:44:55"},
                       {"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "sandbox": "/var/run/netns/x"}],
        "ips": [{"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 1},
                {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 1}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd00::1"}],
        "dns": {"nameservers": ["127.0.0.1"], "domain": "cluster.local", "search": ["a"], "options": ["ndots:5"]},
    }
    r040 = {
        "cniVersion": "0.4.0",
        "interfaces": [{"name": "eth0", "sandbox": "/proc/1/ns/net"}],
        "ips": [{"version": "4", "address": "192.168.1.2/24", "gateway": "", "interface": 0}],
        "dns": {},
    }
    write("cni_result", "1.0.0.json", json.dumps(r100))
    write("cni_result", "0.4.0.json", json.dumps(r040))
    write("cni_result", "0.2.0.json", json.dumps({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.2/24"}}))
    write("cni_result", "bad-index.json", json.dumps(dict(r040, ips=[{"address": "1.2.3.4/33", "interface": 7}])))
    write("cni_result", "ipnet", "fe80::1/128")


# --- SPDY -------------------------------------------------------------------------------------


def spdy():
    with open(DICTIONARY, "rb") as f:
        dictionary = f.read()
    z = zlib.compressobj(zdict=dictionary)

    def block(headers):
        raw = struct.pack(">I", len(headers))
        for k, v in headers:
            for part in (k.encode(), v.encode()):
                raw += struct.pack(">I", len(part)) + part
        return z.compress(raw) + z.flush(zlib.Z_SYNC_FLUSH)

    def control(kind, flags, payload):
        return struct.pack(">HHI", 0x8003, kind, (flags << 24) | len(payload)) + payload

    def syn_stream(sid, headers, flags=0):
        return control(1, flags, struct.pack(">IIH", sid, 0, 0) + block(headers))

    def data(sid, payload, flags=0):
        return struct.pack(">II", sid, (flags << 24) | len(payload)) + payload

    exec_session = (
        syn_stream(1, [("streamType", "error")])
        + syn_stream(3, [("streamType", "stdin")])
        + syn_stream(5, [("streamType", "stdout")], flags=1)
        + syn_stream(7, [("streamType", "resize")])
        + data(3, b"echo hi\n") + data(7, b'{"Width":80,"Height":24}')
        + control(6, 0, struct.pack(">I", 1))
        + data(3, b"", flags=1)
        + control(3, 0, struct.pack(">II", 7, 5))
        + control(4, 0, struct.pack(">I", 0))
        + control(9, 0, struct.pack(">II", 3, 65536))
        + control(8, 0, struct.pack(">I", 3) + block([("x", "y\0z")]))
        + control(7, 0, struct.pack(">II", 7, 0))
    )
    write("spdy_session", "exec.bin", exec_session)
    z = zlib.compressobj(zdict=dictionary)
    write("spdy_session", "portforward.bin",
          syn_stream(1, [("streamType", "error"), ("port", "80"), ("requestID", "0")])
          + syn_stream(3, [("streamType", "data"), ("port", "80"), ("requestID", "0")])
          + data(3, b"GET / HTTP/1.0\r\n\r\n", flags=1) + data(99, b"unknown stream"))
    write("spdy_session", "bad-version.bin", struct.pack(">HHI", 0x8002, 1, 0))


# --- monitor protocol -------------------------------------------------------------------------


def monitor():
    def argv(*args):
        return b"\0" + b"\0".join(a.encode() for a in args)

    write("monitor_proto", "launch-container", argv(
        "container", "--id", "c1", "--runtime", "/usr/bin/crius", "--runtime-arg", "oci",
        "--runtime-root", "/run/crius/oci", "--sync-fd", "3", "--bundle", "/b",
        "--exit-file", "/e", "--log-path", "/l", "--attach-socket", "/a", "--control-socket", "/c",
        "--log-max-line", "16384", "--terminal", "--stdin", "--stdin-once"))
    write("monitor_proto", "launch-exec-sync", argv(
        "exec-sync", "--id", "c1", "--runtime", "/r", "--timeout", "5", "--output-limit", "1024",
        "--", "sh", "-c", "echo hi"))
    write("monitor_proto", "launch-exec", argv("exec", "--id", "c1", "--runtime", "/r", "--process", "/p.json"))
    write("monitor_proto", "sync-started", b"\x01" + b'{"monitor_pid":12,"pid":34}\n')
    write("monitor_proto", "sync-failed", b"\x01" + b'{"error":"runtime create failed (1): boom","monitor_pid":12}\n')
    write("monitor_proto", "exit", b"\x02" + b'{"exit_code":137,"finished_at":"2024-01-01T00:00:00.000000001Z",'
          b'"finished_at_unix_nano":1704067200000000001,"oom_killed":true,"signal":9}\n')
    write("monitor_proto", "control-resize", b"\x03resize 24 80\n")
    write("monitor_proto", "control-reopen", b"\x03reopen-log\n")
    write("monitor_proto", "control-reply", b"\x04error no such thing\n")
    write("monitor_proto", "exec-sync-done", b"\x05" + b'{"exit_code":0,"signal":null,"stderr":"","stderr_truncated":false,'
          b'"stdout":"aGkK","stdout_truncated":false,"timed_out":false}\n')
    write("monitor_proto", "exec-sync-failed", b"\x05" + b'{"error":"no such container","monitor_pid":5}\n')


if __name__ == "__main__":
    shutil.rmtree(CORPUS, ignore_errors=True)
    layers()
    images()
    cni()
    spdy()
    monitor()
