#!/usr/bin/env python3
"""roomkeeper benchmarks, each against a floor measured in the same run (issue #8).

    python3 bench/run.py                          everything, default sizes (about 4 minutes here)
    python3 bench/run.py --parts dismiss --n 1000 --reps 1
    python3 bench/run.py --parts admin
    python3 bench/run.py --parts slow --slow-n 10000

Parts (--parts, comma-separated; default all):
  dismiss  N members in one room through real WebSocket sessions; the room is dismissed through a
           signed Tencent Cloud API 3.0 DismissRoomByStrRoomId (TC3-HMAC-SHA256).  Time to the API
           response, to the last member told (first frame with type room_dismissed) and to the room
           being gone (GET /v1/apps/1400000001/str-rooms/lobby answers 404).  The same harness
           against bench/floor_server.py, and the ratio.
  join     sessions per second that log in with a UserSig (made before the run with the official
           TLSSigAPIv2) and enter the room: measured during the dismiss part's join phase.
  memory   server RSS per idle session: (RSS with N joined after --settle s idle - RSS after a
           warm-up of 20 clients per load-generator process) / N, from the same runs.
  admin    signed DismissRoomByStrRoomId / RemoveUserByStrRoomId requests per second and p50/p99
           latency over --admin-conns keep-alive connections, against GET /healthz of the same
           server in the same run: the cost of parsing, verifying and acting.
  slow     1% of the members stop reading (their sockets are paused); time to the last of the
           other 99%, against the same N without slow consumers.
The dismiss, join and memory parts share their runs.  Each run is a fresh server process pinned
to CPU 0 (taskset -c 0), with the load generators (bench/loadgen.js, bench/adminload.js; Node, no
npm package) and this orchestrator on CPU 1.  Figures are medians over --reps runs.  The table
is printed and the raw records are written to bench/results/ (git-ignored).  Every wait is
bounded; --max-minutes stops starting new runs.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Empty, Queue
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
try:
    import roomkeeper  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO / "src"))

from roomkeeper.auth.tc3 import sign_tc3  # noqa: E402
from roomkeeper.config import (  # noqa: E402
    DEV_NATIVE_TOKEN,
    DEV_SDKAPPID,
    DEV_TC_SECRET_ID,
    DEV_TC_SECRET_KEY,
    DEV_USERSIG_KEY,
)

NODE = os.environ.get("NODE_BIN", "node")
LOADGEN = HERE / "loadgen.js"
ADMINLOAD = HERE / "adminload.js"
FLOOR = HERE / "floor_server.py"
BENCH_TOML = HERE / "bench.toml"
WARMUP = 20  # warm-up clients per load-generator process
ROOM = "lobby"
TC_VERSION = "2019-07-22"
TC_REGION = "ap-guangzhou"

SERVERS = ("roomkeeper", "floor")

# --------------------------------------------------------------------------- process helpers


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def child_setup() -> None:
    """In every child (before exec): the full open-file limit, and SIGKILL when this orchestrator
    dies, however it dies, so that no server or load generator outlives a run."""
    raise_nofile()
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux; kept across exec)
    except (OSError, AttributeError):
        pass


def cpu_ns(pid: int) -> int | None:
    """On-CPU ns of all threads of pid (schedstat field 1)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError):
                pass
    except OSError:
        return None
    return total


def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_busy() -> list[int]:
    """Busy jiffies of cpu0 and cpu1 from /proc/stat (everything but idle and iowait): this also
    counts the kernel's loopback TCP work done in softirq context (ksoftirqd), which a process's
    own CPU time does not."""
    busy = [0, 0]
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(("cpu0 ", "cpu1 ")):
                v = [int(x) for x in line.split()[1:]]
                busy[int(line[3])] = sum(v) - v[3] - v[4]
    return busy


class Sampler(threading.Thread):
    """CPU time of some processes (and of CPUs 0 and 1) every 20 ms, for utilisation over a window."""

    def __init__(self, pids: list[int], period: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.period = period
        self.samples: list[tuple[int, list[int | None]]] = []
        self.cpus: list[tuple[int, list[int]]] = []
        self.stop_ev = threading.Event()
        self.hz = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        end = time.monotonic() + 900  # bounded
        while not self.stop_ev.is_set() and time.monotonic() < end:
            self.samples.append((time.monotonic_ns(), [cpu_ns(p) for p in self.pids]))
            self.cpus.append((time.monotonic_ns(), cpu_busy()))
            time.sleep(self.period)

    def stop(self) -> None:
        self.stop_ev.set()
        self.join(5)
        self.samples.append((time.monotonic_ns(), [cpu_ns(p) for p in self.pids]))
        self.cpus.append((time.monotonic_ns(), cpu_busy()))

    def cpu_util(self, t_a: int, t_b: int) -> tuple[float | None, float | None]:
        """Busy fraction of CPU 0 and CPU 1 between t_a and t_b (10 ms jiffies: coarse below 200 ms)."""
        if not self.cpus:
            return None, None
        a = min(self.cpus, key=lambda s: abs(s[0] - t_a))
        b = min(self.cpus, key=lambda s: abs(s[0] - t_b))
        dt = (b[0] - a[0]) / 1e9
        if dt <= 0:
            return None, None
        c0, c1 = ((y - x) / self.hz / dt for x, y in zip(a[1], b[1], strict=True))
        return min(1.0, c0), min(1.0, c1)

    def cpu_ms(self, t_a: int, t_b: int) -> list[float | None]:
        """CPU milliseconds used by each pid between monotonic ns t_a and t_b (nearest samples)."""
        if not self.samples:
            return [None] * len(self.pids)
        a = min(self.samples, key=lambda s: abs(s[0] - t_a))
        b = min(self.samples, key=lambda s: abs(s[0] - t_b))
        return [None if x is None or y is None else (y - x) / 1e6 for x, y in zip(a[1], b[1], strict=True)]

    def util(self, t_a: int, t_b: int) -> list[float | None]:
        """Cores used by each pid between monotonic ns t_a and t_b (nearest samples)."""
        if not self.samples:
            return [None] * len(self.pids)
        a = min(self.samples, key=lambda s: abs(s[0] - t_a))
        b = min(self.samples, key=lambda s: abs(s[0] - t_b))
        dt = b[0] - a[0]
        if dt <= 0:
            return [None] * len(self.pids)
        return [None if x is None or y is None else (y - x) / dt for x, y in zip(a[1], b[1], strict=True)]


class ForeignLoad(threading.Thread):
    """CPU used by processes that are not this bench's (other users of the machine), sampled every
    0.5 s from /proc/*/stat.  Kernel threads are left out: they do our own loopback work too."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.me = os.getpid()
        self.tck = os.sysconf("SC_CLK_TCK")
        self.snaps: list[tuple[float, dict[int, int]]] = []
        self.stop_ev = threading.Event()

    def snapshot(self) -> dict[int, int]:
        procs: dict[int, tuple[int, int]] = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                procs[int(d)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
            except (OSError, IndexError, ValueError):
                pass
        out = {}
        for pid, (ppid, cpu) in procs.items():
            if pid == 2 or ppid in (0, 2):
                continue  # kernel threads (and init's parent)
            p, mine = pid, False
            for _ in range(64):
                if p == self.me:
                    mine = True
                    break
                p = procs.get(p, (0, 0))[0]
                if p <= 1:
                    break
            if not mine:
                out[pid] = cpu
        return out

    def run(self) -> None:
        end = time.monotonic() + 3600  # bounded
        while not self.stop_ev.is_set() and time.monotonic() < end:
            self.snaps.append((time.monotonic(), self.snapshot()))
            self.stop_ev.wait(0.5)

    def cores(self, a: float, b: float) -> float | None:
        """Average cores used by other processes between monotonic seconds a and b."""
        inside = [s for s in self.snaps if a - 0.5 <= s[0] <= b + 0.5]
        if len(inside) < 2:
            return None
        first, last = inside[0], inside[-1]
        seen: dict[int, int] = {}
        for _t, snap in inside:
            seen.update(snap)  # the last value each process had (also for those that exited)
        total = sum(v - first[1].get(pid, 0) for pid, v in seen.items())
        return total / self.tck / (last[0] - first[0])


FOREIGN = ForeignLoad()


class NodeProc:
    """A Node helper speaking one JSON object per stdout line."""

    def __init__(self, argv: list[str], cpu: str | None) -> None:
        pre = ["taskset", "-c", cpu] if cpu else []
        self.p = subprocess.Popen([*pre, NODE, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, preexec_fn=child_setup)
        self.q: Queue[dict[str, Any]] = Queue()
        self.err: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            try:
                self.q.put(json.loads(line))
            except json.JSONDecodeError:
                self.q.put({"ev": "garbage", "line": line[:200]})
        self.q.put({"ev": "eof"})

    def _read_err(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            if len(self.err) < 50:
                self.err.append(line.rstrip())

    def send(self, cmd: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()

    def expect(self, ev: str, timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"node helper: no {ev!r} within {timeout:.0f}s; stderr={self.err[-5:]}")
            try:
                m = self.q.get(timeout=left)
            except Empty:
                continue
            if m.get("ev") == ev:
                return m
            if m.get("ev") in ("eof", "error"):
                raise RuntimeError(f"node helper: {m}; stderr={self.err[-5:]}")

    def kill(self) -> None:
        try:
            self.send("quit")
        except Exception:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SRC_SEQ = [int(time.time()) % 40000]


def src_block(count: int = 16) -> list[str]:
    """Fresh source addresses 127.a.b.1..count for each run, so that TIME_WAIT sockets of one run
    never collide with the next (and 16 x 28k ephemeral ports are far more than 19,000)."""
    _SRC_SEQ[0] = (_SRC_SEQ[0] + 1) % 60000
    idx = _SRC_SEQ[0]
    a, b = 2 + idx // 250, 1 + idx % 250
    return [f"127.{a}.{b}.{c}" for c in range(1, count + 1)]


# --------------------------------------------------------------------------- HTTP helpers


def http_exchange(sock: socket.socket, request: bytes, timeout: float = 60.0) -> tuple[int, bytes]:
    """Send one request on a connected socket and read one Content-Length response."""
    sock.settimeout(timeout)
    sock.sendall(request)
    buf = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        head, sep, body = buf.partition(b"\r\n\r\n")
        if sep:
            clen = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    clen = int(value.strip())
            if len(body) >= clen:
                return int(head.split(b" ", 2)[1]), body[:clen]
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    head, sep, body = buf.partition(b"\r\n\r\n")
    return (int(head.split(b" ", 2)[1]) if sep else 0), body


def http_once(port: int, request: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        return http_exchange(s, request, timeout)


def get_request(port: int, path: str, *, bearer: str | None = None, close: bool = False) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if bearer:
        lines.append(f"Authorization: Bearer {bearer}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def tc3_request(port: int, action: str, params: dict[str, Any], *, close: bool = False) -> bytes:
    """A Tencent Cloud API 3.0 POST signed with TC3-HMAC-SHA256, as the official SDK sends it."""
    body = json.dumps(params).encode()
    host = f"127.0.0.1:{port}"
    ts = int(time.time())
    auth = sign_tc3(secret_id=DEV_TC_SECRET_ID, secret_key=DEV_TC_SECRET_KEY, method="POST", host=host,
                    raw_query="", headers_to_sign={"content-type": "application/json"}, body=body, timestamp=ts)
    head = (f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nAuthorization: {auth}\r\nX-TC-Action: {action}\r\n"
            f"X-TC-Version: {TC_VERSION}\r\nX-TC-Region: {TC_REGION}\r\nX-TC-Timestamp: {ts}\r\n"
            f"X-TC-Language: zh-CN\r\n" + ("Connection: close\r\n" if close else "") + "\r\n")
    return head.encode("latin-1") + body


def native_request(port: int, path: str, body: dict[str, Any], *, close: bool = False) -> bytes:
    data = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {DEV_NATIVE_TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n")
    return head.encode("latin-1") + data


class AdminApi:
    """How this run's roomkeeper is told to dismiss / remove: TC3 when the Tencent Cloud API 3.0
    dialect answers, else the native API (and the output says so)."""

    def __init__(self, port: int) -> None:
        self.port = port
        status, body = http_once(port, tc3_request(port, "DismissRoomByStrRoomId",
                                                   {"SdkAppId": DEV_SDKAPPID, "RoomId": "bench-probe-no-such-room"},
                                                   close=True))
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        self.tc3 = status == 200 and isinstance(doc, dict) and "Response" in doc
        self.label = ("TC3 DismissRoomByStrRoomId" if self.tc3
                      else "native POST /v1/.../dismiss (TC3 dialect not available in this build)")

    def dismiss(self, room: str, *, close: bool = False) -> bytes:
        if self.tc3:
            return tc3_request(self.port, "DismissRoomByStrRoomId", {"SdkAppId": DEV_SDKAPPID, "RoomId": room},
                               close=close)
        return native_request(self.port, f"/v1/apps/{DEV_SDKAPPID}/str-rooms/{room}/dismiss", {}, close=close)

    def remove(self, room: str, users: list[str]) -> bytes:
        if self.tc3:
            return tc3_request(self.port, "RemoveUserByStrRoomId",
                               {"SdkAppId": DEV_SDKAPPID, "RoomId": room, "UserIds": users})
        return native_request(self.port, f"/v1/apps/{DEV_SDKAPPID}/str-rooms/{room}/remove-users",
                              {"user_ids": users})

    @staticmethod
    def outcome(status: int, body: bytes) -> tuple[bool, str | None]:
        try:
            doc = json.loads(body)
        except ValueError:
            return False, f"HTTP {status}: not JSON"
        if status != 200:
            return False, f"HTTP {status}: {body[:120]!r}"
        err = doc.get("Response", {}).get("Error") if isinstance(doc, dict) else None
        if err is None and isinstance(doc, dict):
            err = doc.get("error")
        return err is None, None if err is None else json.dumps(err)[:160]


# --------------------------------------------------------------------------- servers


class ServerProc:
    def __init__(self, kind: str, port: int, cpu: str | None, logdir: Path, tag: str) -> None:
        self.kind = kind
        self.port = port
        if kind == "roomkeeper":
            argv = [sys.executable, "-m", "roomkeeper.cli", "serve", "--config", str(BENCH_TOML), "--port", str(port)]
        else:
            argv = [sys.executable, str(FLOOR), "--port", str(port)]
        pre = ["taskset", "-c", cpu] if cpu else []
        self.log = open(logdir / f"{tag}.log", "w")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.p = subprocess.Popen(pre + argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                  preexec_fn=child_setup)
        self.pid = self.p.pid  # taskset execs the command: same pid
        self.argv = argv

    def profile(self, outdir: Path, tag: str) -> None:
        """Sample the server with py-spy until stop() (collapsed stacks; see profile_summary.py)."""
        self.spy_out = outdir / f"{tag}.txt"
        self.spy = subprocess.Popen(["py-spy", "record", "--pid", str(self.pid), "--format", "raw", "--rate", "250",
                                     "-o", str(self.spy_out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    preexec_fn=child_setup)
        time.sleep(0.5)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.p.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.p.returncode}; see {self.log.name}")
            try:
                status, _ = http_once(self.port, get_request(self.port, "/healthz", close=True), timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} not healthy within {timeout}s")

    def stop(self) -> None:
        spy = getattr(self, "spy", None)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)  # a benchmark process: no graceful shutdown to wait for
        try:
            self.p.wait(timeout=10)
        finally:
            self.log.close()


# --------------------------------------------------------------------------- users


class Users:
    """UserSigs made before any run with the official TLSSigAPIv2 module (not timed)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.sigs: dict[str, str] = {}
        self.gen_s = 0.0
        import TLSSigAPIv2

        self._api = TLSSigAPIv2.TLSSigAPIv2(DEV_SDKAPPID, DEV_USERSIG_KEY)

    def ensure(self, users: list[str]) -> None:
        t = time.monotonic()
        for u in users:
            if u not in self.sigs:
                self.sigs[u] = self._api.gen_sig(u, 86400)
        self.gen_s += time.monotonic() - t

    def files(self, per_proc: list[int], tag: str) -> list[Path]:
        """One --users file per load-generator process; user ids unique across all of them."""
        out, off = [], 0
        for i, ni in enumerate(per_proc):
            join = [f"u{off + j}" for j in range(ni)]
            warm = [f"w{i}_{j}" for j in range(WARMUP)]
            self.ensure(join + warm)
            path = self.workdir / f"users_{tag}_p{i}.json"
            path.write_text(json.dumps({"sdkappid": DEV_SDKAPPID, "warmup": [[u, self.sigs[u]] for u in warm],
                                        "join": [[u, self.sigs[u]] for u in join]}))
            out.append(path)
            off += ni
        return out


# --------------------------------------------------------------------------- one room run


def split(n: int, procs: int) -> list[int]:
    procs = max(1, min(procs, n))
    return [n // procs + (1 if i < n % procs else 0) for i in range(procs)]


def pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


def start_loadgens(port: int, n: int, args: argparse.Namespace, users: Users, tag: str, extra: list[str]
                   ) -> list[NodeProc]:
    per = split(n, args.procs)
    files = users.files(per, tag)
    srcs = src_block(16)
    gens = []
    off = 0
    for i, ni in enumerate(per):
        mysrc = srcs[i :: len(per)]
        gens.append(NodeProc([str(LOADGEN), "--port", str(port), "--n", str(ni),
                              "--window", str(max(1, args.window // len(per))), "--src", ",".join(mysrc),
                              "--users", str(files[i]), "--join-timeout-ms", str(int(args.join_timeout * 1000)),
                              "--room-offset", str(off), *extra], args.cli_cpu))
        off += ni
    for g in gens:
        g.expect("ready", 20)
    return gens


def room_run(kind: str, n: int, rep: int, args: argparse.Namespace, users: Users, slow_every: int = 0
             ) -> dict[str, Any]:
    """Start a fresh server, join n sessions to one room, idle, dismiss, measure; kill everything."""
    port = free_port()
    tag = f"{kind}_n{n}_r{rep}" + (f"_slow{slow_every}" if slow_every else "")
    rec: dict[str, Any] = {"server": kind, "n": n, "rep": rep, "slow_every": slow_every, "procs": args.procs,
                           "window": args.window, "pinned": args.pin, "settle_s": args.settle}
    srv: ServerProc | None = None
    gens: list[NodeProc] = []
    t_run = time.monotonic()
    try:
        srv = ServerProc(kind, port, args.srv_cpu, args.logdir, tag)
        srv.wait_healthy()
        if args.profile:
            srv.profile(Path(args.profile), tag)
        api = AdminApi(port) if kind == "roomkeeper" else None
        rec["api"] = api.label if api else "GET /admin/dismiss (floor)"
        gens = start_loadgens(port, n, args, users, tag, ["--room", ROOM] +
                              (["--slow-every", str(slow_every)] if slow_every else []))
        for g in gens:
            g.send(f"warmup {WARMUP}")
        for g in gens:
            w = g.expect("warmup_done", 30)
            if w["failed"]:
                raise RuntimeError(f"warm-up failures: {w}")
        time.sleep(1.0)
        rec["rss_base_kb"] = rss_kb(srv.pid)

        # ---- join
        samp = Sampler([srv.pid] + [g.p.pid for g in gens])
        samp.start()
        for g in gens:
            g.send("join")
        joins = [g.expect("joined", args.join_timeout + 30) for g in gens]
        t_js = min(j["t_start"] for j in joins)
        t_je = max(j["t_end"] for j in joins)
        ok = sum(j["ok"] for j in joins)
        slow_joined = sum(j["slow_joined"] for j in joins)
        rec.update({
            "join_ok": ok, "join_failed": sum(j["failed"] for j in joins), "slow_joined": slow_joined,
            "join_s": (t_je - t_js) / 1e9, "join_rate": ok / ((t_je - t_js) / 1e9) if t_je > t_js else None,
            "join_ms_p50": max(j["join_ms_p50"] or 0 for j in joins),
            "join_ms_p99": max(j["join_ms_p99"] or 0 for j in joins),
            "join_errors": [j["errors"] for j in joins if j["errors"]],
        })
        u = samp.util(t_js, t_je)
        rec["cpu_join_server"] = u[0]
        lg = [x for x in u[1:] if x is not None]
        rec["cpu_join_loadgen"] = sum(lg) if lg else None
        rec["cpu0_join"], rec["cpu1_join"] = samp.cpu_util(t_js, t_je)
        ms = samp.cpu_ms(t_js, t_je)[0]
        if ms is not None and ok:
            rec["server_cpu_us_per_join"] = ms * 1000 / ok

        # ---- idle
        time.sleep(args.settle)
        rec["rss_idle_kb"] = rss_kb(srv.pid)
        if ok and rec["rss_base_kb"] and rec["rss_idle_kb"]:
            rec["rss_per_session_kib"] = (rec["rss_idle_kb"] - rec["rss_base_kb"]) / ok

        # ---- dismiss: signed now, sent on a connection opened before t0
        request = api.dismiss(ROOM) if api is not None else get_request(port, f"/admin/dismiss?room={ROOM}")
        poll = get_request(port, f"/v1/apps/{DEV_SDKAPPID}/str-rooms/{ROOM}", bearer=DEV_NATIVE_TOKEN)
        with socket.create_connection(("127.0.0.1", port), timeout=args.dismiss_timeout) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t0 = time.monotonic_ns()
            status, body = http_exchange(s, request, args.dismiss_timeout)
            t_resp = time.monotonic_ns()
            if api is not None:  # room gone: poll GET .../str-rooms/lobby on the same connection until 404
                rec["api_ok"], rec["api_error"] = api.outcome(status, body)
                for i in range(500):
                    st, _b = http_exchange(s, poll, 10)
                    if st == 404:
                        rec["gone_ms"] = (time.monotonic_ns() - t0) / 1e6
                        rec["gone_polls"] = i + 1  # 1: gone by the time the API answered
                        break
                    if time.monotonic_ns() - t0 > 5e9:
                        break
            else:
                rec["api_ok"] = status == 200
        rec["http_status"] = status
        rec["api_ms"] = (t_resp - t0) / 1e6
        reps = []
        deadline = time.monotonic() + args.dismiss_timeout
        for g in gens:
            try:
                reps.append(g.expect("dismiss_report", max(1.0, deadline - time.monotonic())))
            except TimeoutError:
                g.send("report")
                reps.append(g.expect("dismiss_report", 30))
                rec["dismiss_timed_out"] = True
        t_msg = [(t - t0) / 1e6 for r in reps for t in r["t_msg"] if t > 0]
        reading = sum(len(r["t_msg"]) for r in reps)
        rec.update({
            "reading_members": reading, "told": len(t_msg),
            "told_last_ms": max(t_msg) if t_msg else None, "told_p50_ms": pct(t_msg, 0.5),
            "told_first_ms": min(t_msg) if t_msg else None,
            "closed_by_server": sum(1 for r in reps for t in r["t_close"] if t > 0),
            "dismiss_errors": [r["errors"] for r in reps if r["errors"]],
        })
        if rec["told_last_ms"] is not None:
            u = samp.util(t0, t0 + int(rec["told_last_ms"] * 1e6))
            rec["cpu_dismiss_server"] = u[0]
            lg = [x for x in u[1:] if x is not None]
            rec["cpu_dismiss_loadgen"] = sum(lg) if lg else None
            rec["cpu0_dismiss"], rec["cpu1_dismiss"] = samp.cpu_util(t0, t0 + int(rec["told_last_ms"] * 1e6))
        samp.stop()
        if slow_every:  # the slow consumers read again: they must get the notification they missed
            for g in gens:
                g.send("resume")
            res = [g.expect("resumed", 30) for g in gens]
            rec["slow_told_after_resume"] = sum(r["slow_told"] for r in res)
        rec["complete"] = bool(ok == n and len(t_msg) == n - slow_joined and status == 200 and rec["api_ok"]
                               and (not slow_every or rec.get("slow_told_after_resume") == slow_joined))
    except Exception as e:  # record the failure and go on with the next run
        rec["error"] = f"{type(e).__name__}: {e}"
        rec["complete"] = False
    finally:
        if srv is not None:
            srv.stop()
        for g in gens:
            g.kill()
            if g.err:
                rec.setdefault("loadgen_stderr", g.err[-5:])
        time.sleep(0.6)
        rec["foreign_cores"] = FOREIGN.cores(t_run, time.monotonic())
    return rec


# --------------------------------------------------------------------------- admin API run


def admin_run(args: argparse.Namespace, users: Users) -> dict[str, Any]:
    """One roomkeeper: --admin-rooms rooms of one session each, then keep-alive load with
    adminload.js: GET /healthz (bare), RemoveUserByStrRoomId of users not in the room (distinct
    UserIds), DismissRoomByStrRoomId of every room once."""
    port = free_port()
    k = args.admin_rooms
    rec: dict[str, Any] = {"conns": args.admin_conns, "rooms": k, "reps": args.reps}
    srv: ServerProc | None = None
    gens: list[NodeProc] = []
    t_run = time.monotonic()
    try:
        srv = ServerProc("roomkeeper", port, args.srv_cpu, args.logdir, "roomkeeper_admin")
        srv.wait_healthy()
        if args.profile:
            srv.profile(Path(args.profile), "roomkeeper_admin")
        api = AdminApi(port)
        rec["api"] = api.label
        gens = start_loadgens(port, k, args, users, "admin", ["--room-prefix", "adm"])
        for g in gens:
            g.send("join")
        joins = [g.expect("joined", args.join_timeout + 30) for g in gens]
        rec["rooms_joined"] = sum(j["ok"] for j in joins)
        rooms = [f"adm{j}" for j in range(k)]  # one session each
        tmp = args.workdir

        def load(name: str, argv: list[str]) -> dict[str, Any]:
            pr = NodeProc([str(ADMINLOAD), "--port", str(port), "--conns", str(args.admin_conns),
                           "--max-ms", str(int(args.admin_max_s * 1000)), "--src", ",".join(src_block(4)), *argv],
                          args.cli_cpu)
            samp = Sampler([srv.pid, pr.p.pid])
            samp.start()
            try:
                r = pr.expect("admin_done", args.admin_max_s + 30)
            finally:
                t1 = time.monotonic_ns()
                samp.stop()  # (its last sample must still see the client process)
                pr.kill()
            u = samp.util(t1 - int(r["elapsed_ms"] * 1e6), t1)
            r["cpu_server"], r["cpu_client"] = u[0], u[1]
            r["cpu0"], r["cpu1"] = samp.cpu_util(t1 - int(r["elapsed_ms"] * 1e6), t1)
            ms = samp.cpu_ms(t1 - int(r["elapsed_ms"] * 1e6), t1)[0]
            r["server_cpu_us_per_req"] = ms * 1000 / r["done"] if ms is not None and r["done"] else None
            r["name"] = name
            return r

        def signed_file(name: str, reqs: list[bytes]) -> Path:
            path = tmp / f"admin_{name}.json"
            path.write_text(json.dumps({"requests": [q.decode("latin-1") for q in reqs]}))
            return path

        load("warmup", ["--get", "/healthz", "--count", "2000"])
        bare, remove = [], []
        m = args.admin_requests
        for rep in range(args.reps):
            bare.append(load("bare", ["--get", "/healthz", "--count", str(m)]))
            reqs = [api.remove(rooms[(rep * m + j) % len(rooms)], [f"ghost{rep}_{j}"]) for j in range(m)]
            remove.append(load("remove", ["--file", str(signed_file(f"remove{rep}", reqs))]))
        dreqs = [api.dismiss(r) for r in rooms]
        dismiss = load("dismiss", ["--file", str(signed_file("dismiss", dreqs))])
        rec.update({"bare": bare, "remove": remove, "dismiss": dismiss})
        rec["complete"] = (all(r["ok"] == r["done"] == m for r in bare + remove)
                           and dismiss["ok"] == dismiss["done"] == len(rooms))
    except Exception as e:
        rec["error"] = f"{type(e).__name__}: {e}"
        rec["complete"] = False
    finally:
        if srv is not None:
            srv.stop()
        for g in gens:
            g.kill()
        time.sleep(0.6)
        rec["foreign_cores"] = FOREIGN.cores(t_run, time.monotonic())
    return rec


# --------------------------------------------------------------------------- summary table


def med(recs: list[dict[str, Any]], key: str) -> float | None:
    xs = [r[key] for r in recs if r.get(key) is not None and r.get("complete")]
    return statistics.median(xs) if xs else None


def fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}{unit}"
    return f"{x:.1f}{unit}" if abs(x) >= 10 else f"{x:.2f}{unit}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "n/a"


def summarize(results: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    runs = [r for r in results.get("runs", []) if not r.get("pair")]
    pairs = [r for r in results.get("runs", []) if r.get("pair") or r["slow_every"]]
    ns = sorted({r["n"] for r in runs if not r["slow_every"]})

    def sel(kind: str, n: int, slow: bool = False) -> list[dict[str, Any]]:
        return [r for r in runs if r["server"] == kind and r["n"] == n and bool(r["slow_every"]) == slow]

    def cnt(kind: str, n: int, slow: bool = False) -> str:
        rs = sel(kind, n, slow)
        return f"{sum(1 for r in rs if r.get('complete'))}/{len(rs)}"

    for n in ns:
        rk, fl = sel("roomkeeper", n), sel("floor", n)
        for key, label in (("api_ms", "dismiss: API response (ms)"),
                           ("told_last_ms", "dismiss: last member told (ms)"),
                           ("told_p50_ms", "dismiss: median member told (ms)")):
            a, b = med(rk, key), med(fl, key)
            target = "<= 1.3x floor" if key == "told_last_ms" and n >= 10000 else ""
            verdict = ("" if not target or a is None or b is None else ("met" if a <= 1.3 * b else "MISSED"))
            rows.append(["1", label, f"{n:,}", fmt(a), fmt(b), ratio(a, b), target, verdict])
        g = med(rk, "gone_ms")
        rows.append(["1", "dismiss: room gone, GET -> 404 (ms)", f"{n:,}", fmt(g), "n/a", "", "", ""])
        a, b = med(rk, "cpu_dismiss_server"), med(rk, "cpu_dismiss_loadgen")
        rows.append(["1", "dismiss: CPU server / loadgen (cores)", f"{n:,}",
                     f"{fmt(a)} / {fmt(b)}", f"{fmt(med(fl, 'cpu_dismiss_server'))} / "
                     f"{fmt(med(fl, 'cpu_dismiss_loadgen'))}", "", "", f"runs ok {cnt('roomkeeper', n)}, "
                     f"{cnt('floor', n)}"])
    for n in ns:
        a, b = med(sel("roomkeeper", n), "join_rate"), med(sel("floor", n), "join_rate")
        verdict = "" if a is None else ("met" if a >= 2000 else "MISSED")
        rows.append(["2", "join rate incl. UserSig check (sessions/s)", f"{n:,}", fmt(a), fmt(b), ratio(a, b),
                     ">= 2,000", verdict])
        a, b = med(sel("roomkeeper", n), "server_cpu_us_per_join"), med(sel("floor", n), "server_cpu_us_per_join")
        rows.append(["2", "join: server CPU per session (us)", f"{n:,}", fmt(a), fmt(b), ratio(a, b), "", ""])
    adm = results.get("admin")
    if adm and not adm.get("error"):
        bare = statistics.median(r["rate"] for r in adm["bare"])
        tc3 = str(adm.get("api", "")).startswith("TC3")
        for name, label in (("remove", "RemoveUserByStrRoomId" if tc3 else "native POST .../remove-users"),
                            ("dismiss", "DismissRoomByStrRoomId" if tc3 else "native POST .../dismiss")):
            rs = adm[name] if isinstance(adm[name], list) else [adm[name]]
            rate = statistics.median(r["rate"] for r in rs)
            p50 = statistics.median(r["p50_ms"] for r in rs)
            p99 = statistics.median(r["p99_ms"] for r in rs)
            cost_rate = (bare / rate - 1) * 100
            cpu = statistics.median(r["server_cpu_us_per_req"] or 0 for r in rs)
            cpu_bare = statistics.median(r["server_cpu_us_per_req"] or 0 for r in adm["bare"])
            cost = (cpu / cpu_bare - 1) * 100 if cpu_bare else None
            rows.append(["3", f"admin {label} (req/s; p50/p99 ms)", f"{adm['conns']} conns",
                         f"{fmt(rate)}; {p50:.2f}/{p99:.2f}", "", "", ">= 2,000",
                         "met" if rate >= 2000 else "MISSED"])
            rows.append(["3", f"admin {label}: server CPU per request over bare GET /healthz (by rate)", "",
                         f"{cpu:.0f} vs {cpu_bare:.0f} us: +{cost or 0:.0f}% (+{cost_rate:.0f}%)", "", "",
                         "< 30%", "" if cost is None else ("met" if cost < 30 else "MISSED")])
        b50 = statistics.median(r["p50_ms"] for r in adm["bare"])
        b99 = statistics.median(r["p99_ms"] for r in adm["bare"])
        rows.append(["3", "bare GET /healthz, same server (req/s; p50/p99 ms)", f"{adm['conns']} conns",
                     f"{fmt(bare)}; {b50:.2f}/{b99:.2f}", "", "", "", ""])
    elif adm:
        rows.append(["3", "admin API", "", f"error: {adm['error'][:60]}", "", "", "", ""])
    for n in ns:
        a, b = med(sel("roomkeeper", n), "rss_per_session_kib"), med(sel("floor", n), "rss_per_session_kib")
        verdict = "" if a is None or n < 10000 else ("met" if a <= 20 else "MISSED")
        rows.append(["4", "RSS per idle session (KiB)", f"{n:,}", fmt(a), fmt(b), ratio(a, b),
                     "<= 20 KiB" if n >= 10000 else "", verdict])
    for n in sorted({r["n"] for r in pairs}):
        for kind in SERVERS:
            ps = [r for r in pairs if r["server"] == kind and r["n"] == n]
            b_runs = [r for r in ps if not r["slow_every"]]
            s_runs = [r for r in ps if r["slow_every"]]
            base, slow = med(b_runs, "told_last_ms"), med(s_runs, "told_last_ms")
            if base is None and slow is None:
                continue
            verdict = ""
            if kind == "roomkeeper" and base is not None and slow is not None:
                verdict = "met" if slow <= 1.2 * base else "MISSED"
            rows.append(["5", f"{kind}: last of the 99% told, with 1% not reading vs without (ms)", f"{n:,}",
                         f"{fmt(slow)} vs {fmt(base)}", "", ratio(slow, base),
                         "no measurable delay (within 20% run-to-run noise)" if kind == "roomkeeper" else "",
                         verdict])
            a_s, a_b = med(s_runs, "api_ms"), med(b_runs, "api_ms")
            told = [r.get("slow_told_after_resume") for r in s_runs if r.get("complete")]
            rows.append(["5", f"{kind}: API response with vs without; slow members told once they read", f"{n:,}",
                         f"{fmt(a_s)} vs {fmt(a_b)}; {told[0] if told else 'n/a'} of "
                         f"{s_runs[0].get('slow_joined') if s_runs else 'n/a'}", "", ratio(a_s, a_b), "", ""])
    return rows


def render(rows: list[list[str]]) -> str:
    head = ["part", "measure", "N", "roomkeeper", "floor", "ratio", "target", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def versions() -> dict[str, Any]:
    v: dict[str, Any] = {"python": sys.version.split()[0], "nproc": os.cpu_count(), "uname": os.uname().release,
                         "nofile_hard": resource.getrlimit(resource.RLIMIT_NOFILE)[1]}
    try:
        v["node"] = subprocess.run([NODE, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        v["node"] = None
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("roomkeeper", "websockets", "uvloop", "httptools", "orjson", "tls-sig-api-v2"):
        try:
            v[pkg] = version(pkg)
        except PackageNotFoundError:
            v[pkg] = None
    return v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="roomkeeper benchmarks (bench/README.md)")
    ap.add_argument("--parts", default="dismiss,join,memory,admin,slow",
                    help="comma-separated: dismiss, join, memory (these three share runs), admin, slow")
    ap.add_argument("--n", default="1000,10000,19000", help="room sizes for dismiss/join/memory")
    ap.add_argument("--reps", type=int, default=3, help="runs per (server, N); figures are medians")
    ap.add_argument("--servers", default="roomkeeper,floor")
    ap.add_argument("--slow-n", type=int, default=10000, help="room size of the slow-consumer part")
    ap.add_argument("--slow-every", type=int, default=100, help="every K-th member is slow (100 = 1%%)")
    ap.add_argument("--procs", type=int, default=4, help="load-generator processes")
    ap.add_argument("--window", type=int, default=100, help="WebSocket handshakes in flight (total)")
    ap.add_argument("--settle", type=float, default=3.0, help="idle seconds before the RSS reading")
    ap.add_argument("--admin-rooms", type=int, default=4000, help="rooms for the DismissRoom load")
    ap.add_argument("--admin-requests", type=int, default=20000, help="requests per admin load phase")
    ap.add_argument("--admin-conns", type=int, default=16, help="keep-alive connections of the admin load")
    ap.add_argument("--admin-max-s", type=float, default=60.0, help="time bound of one admin load phase")
    ap.add_argument("--join-timeout", type=float, default=120.0)
    ap.add_argument("--dismiss-timeout", type=float, default=60.0)
    ap.add_argument("--no-pin", dest="pin", action="store_false",
                    help="do not pin (default: server on CPU 0; load generators and this script on CPU 1)")
    ap.add_argument("--max-minutes", type=float, default=25.0, help="stop starting new runs after this")
    ap.add_argument("--out", help="JSON results file (default bench/results/run-<time>.json)")
    ap.add_argument("--quiet", action="store_true", help="no per-run lines")
    ap.add_argument("--profile", metavar="DIR", help="run py-spy on every server; collapsed stacks go to DIR "
                    "(summarise with bench/profile_summary.py); slows the servers down")
    args = ap.parse_args(argv)

    parts = set(args.parts.split(","))
    unknown = parts - {"dismiss", "join", "memory", "admin", "slow"}
    if unknown:
        ap.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    servers = [s for s in args.servers.split(",") if s]
    if set(servers) - set(SERVERS):
        ap.error(f"servers are {', '.join(SERVERS)}")
    if shutil.which(NODE) is None:
        print("bench: node (v18+) is required for the load generators", file=sys.stderr)
        return 2
    ns = [int(x) for x in args.n.split(",") if x]
    if max([*ns, args.slow_n]) > 19000:
        print("bench: N is capped at 19,000 here (one server process, 20,000 open files)", file=sys.stderr)
    raise_nofile()
    if args.pin and (os.cpu_count() or 1) < 2:
        print("bench: fewer than 2 CPUs: not pinning", file=sys.stderr)
        args.pin = False
    args.srv_cpu = "0" if args.pin else None
    args.cli_cpu = "1" if args.pin else None
    if args.pin:
        os.sched_setaffinity(0, {1})

    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else HERE / "results" / f"run-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    args.workdir = out.parent / f"work-{stamp}-{os.getpid()}"
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.logdir = args.workdir / "logs"
    args.logdir.mkdir(exist_ok=True)
    t_start = time.monotonic()
    FOREIGN.start()
    users = Users(args.workdir)
    results: dict[str, Any] = {"started": stamp, "argv": sys.argv[1:], "versions": versions(),
                               "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                               "runs": []}

    def budget_left() -> bool:
        if time.monotonic() - t_start > args.max_minutes * 60:
            print("bench: --max-minutes reached; no new runs", flush=True)
            return False
        return True

    def log_run(rec: dict[str, Any]) -> None:
        results["runs"].append(rec)
        if not args.quiet:
            print(f"  {rec['server']:10s} n={rec['n']:6d} rep={rec['rep']} slow={rec['slow_every']:3d} "
                  f"join={rec.get('join_rate') or 0:7.0f}/s ({rec.get('server_cpu_us_per_join') or 0:.0f}us cpu) "
                  f"rss/session={rec.get('rss_per_session_kib') or 0:5.1f}KiB "
                  f"api={rec.get('api_ms') or 0:7.1f}ms told_last={rec.get('told_last_ms') or 0:7.1f}ms "
                  f"gone={rec.get('gone_ms') or 0:7.1f}ms "
                  f"cpu srv/lg={rec.get('cpu_dismiss_server') or 0:.2f}/{rec.get('cpu_dismiss_loadgen') or 0:.2f} "
                  f"cpu0/1={rec.get('cpu0_dismiss') or 0:.2f}/{rec.get('cpu1_dismiss') or 0:.2f} "
                  f"other={rec.get('foreign_cores') or 0:.2f} ok={rec.get('complete')} {rec.get('error', '')}",
                  flush=True)

    # UserSigs for the largest run, made before any server starts (TLSSigAPIv2, not timed)
    biggest = max([*ns, args.slow_n if "slow" in parts else 0, args.admin_rooms if "admin" in parts else 0])
    users.files(split(biggest, args.procs), "pre")
    print(f"bench: {len(users.sigs)} UserSigs made with TLSSigAPIv2 in {users.gen_s:.1f}s; "
          f"pinning {'server CPU 0, load CPU 1' if args.pin else 'off'}", flush=True)

    room_parts = parts & {"dismiss", "join", "memory"}
    if room_parts:
        print(f"bench: dismiss/join/memory, N={ns}, {args.reps} reps, servers {servers}", flush=True)
        for rep in range(args.reps):
            for n in ns:
                for kind in servers:
                    if budget_left():
                        log_run(room_run(kind, n, rep, args, users))
    if "admin" in parts and "roomkeeper" in servers and budget_left():
        print(f"bench: admin API, {args.admin_conns} keep-alive connections", flush=True)
        results["admin"] = admin_run(args, users)
        adm = results["admin"]
        if not args.quiet:
            for r in adm.get("bare", []) + adm.get("remove", []) + ([adm["dismiss"]] if "dismiss" in adm else []):
                print(f"  {r['name']:8s} {r['rate']:8.0f} req/s p50={r['p50_ms']:.2f}ms p99={r['p99_ms']:.2f}ms "
                      f"ok={r['ok']}/{r['done']} srv_cpu/req={r['server_cpu_us_per_req'] or 0:.0f}us "
                      f"cpu srv/cli={r['cpu_server'] or 0:.2f}/{r['cpu_client'] or 0:.2f} "
                      f"cpu0/1={r['cpu0'] or 0:.2f}/{r['cpu1'] or 0:.2f}",
                      flush=True)
            if adm.get("error"):
                print(f"  admin: {adm['error']}", flush=True)
    if "slow" in parts:
        print(f"bench: slow consumers, N={args.slow_n}, every {args.slow_every}th member not reading; "
              "each slow run is paired with a run without slow consumers, right before it", flush=True)
        for rep in range(args.reps):
            for kind in servers:
                if not budget_left():
                    break
                base = room_run(kind, args.slow_n, rep, args, users)
                base["pair"] = "slow-baseline"
                log_run(base)
                log_run(room_run(kind, args.slow_n, rep, args, users, slow_every=args.slow_every))

    shown = {"1": "dismiss", "2": "join", "3": "admin", "4": "memory", "5": "slow"}
    rows = [r for r in summarize(results) if shown[r[0]] in parts]
    results["table"] = rows
    fc = [r["foreign_cores"] for r in [*results["runs"], results.get("admin", {})]
          if r.get("foreign_cores") is not None]
    if fc:
        results["foreign_cores_mean"] = statistics.mean(fc)
        results["foreign_cores_max"] = max(fc)
    results["elapsed_s"] = round(time.monotonic() - t_start, 1)
    apis = sorted({r["api"] for r in results["runs"] if r.get("api") and r["server"] == "roomkeeper"})
    out.write_text(json.dumps(results, indent=1))
    shutil.copyfile(out, out.parent / "latest.json")
    for p in args.workdir.glob("*.json"):
        p.unlink()
    if all(r.get("complete") for r in results["runs"]) and results.get("admin", {}).get("complete", True):
        shutil.rmtree(args.workdir, ignore_errors=True)  # server logs are kept only when a run failed
    else:
        print(f"bench: some runs failed; server logs are in {args.workdir / 'logs'}")
    print()
    print(render(rows))
    print()
    if fc:
        print(f"other processes on this machine used {statistics.mean(fc):.2f} cores on average during the runs "
              f"(max {max(fc):.2f} in one run) of the 2; figures are only as clean as that")
    print(f"roomkeeper dismissed through: {', '.join(apis) or 'n/a'}")
    print(f"results: {out} ({results['elapsed_s']:.0f}s); raw records per run are in it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
