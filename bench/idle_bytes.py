#!/usr/bin/env python3
# What an idle connection holds in zcproxy: its allocator's live bytes (an LD_PRELOAD counter of
# malloc's usable sizes, bench/alloc_count.c, built by bench/idle_bytes.sh) and its RSS, per
# connection, with N idle connections held open through one worker thread to a local upstream
# that accepts and holds them (loopback only).
#   python3 bench/idle_bytes.py BINARY N [ENGINE] (run by bench/idle_bytes.sh)
import os, socket, subprocess, sys, time, tempfile, threading
binary, n = sys.argv[1], int(sys.argv[2]); engine = sys.argv[3] if len(sys.argv) > 3 else "adaptive"
up = socket.socket(); up.bind(("127.0.0.1", 0)); up.listen(4096); up_port = up.getsockname()[1]
held_up = []
def acc():
    while True:
        try: c, _ = up.accept(); held_up.append(c)
        except OSError: return
threading.Thread(target=acc, daemon=True).start()
p = socket.socket(); p.bind(("127.0.0.1", 0)); port = p.getsockname()[1]; p.close()
d = tempfile.mkdtemp()
cfg = f"""threads: 1
log: {{level: warn, access_log: false}}
relay: {{engine: {engine}}}
listeners:
  - name: l
    bind: 127.0.0.1:{port}
    upstream: u
upstreams:
  u:
    endpoints: ["127.0.0.1:{up_port}"]
"""
open(f"{d}/c.yaml", "w").write(cfg)
env = dict(os.environ, LD_PRELOAD=os.environ["ALLOC_COUNT_SO"], ALLOC_COUNT_FILE=f"{d}/alloc")
proc = subprocess.Popen([binary, "-c", f"{d}/c.yaml"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def rss(): return int([l for l in open(f"/proc/{proc.pid}/status") if l.startswith("VmRSS")][0].split()[1])
def fds(): return len(os.listdir(f"/proc/{proc.pid}/fd"))
def alloc(): time.sleep(0.5); return [int(x) for x in open(f"{d}/alloc").read().split()]
for _ in range(100):
    try: socket.create_connection(("127.0.0.1", port)).close(); break
    except OSError: time.sleep(0.05)
# warm: open/close a few
time.sleep(0.5)
r0, f0, a0 = rss(), fds(), alloc()
cs = []
for i in range(n):
    cs.append(socket.create_connection(("127.0.0.1", port)))
for _ in range(200):
    if fds() - f0 >= 2 * n: break
    time.sleep(0.05)
time.sleep(0.5)
r1, f1, a1 = rss(), fds(), alloc()
print(f"{binary} {engine} n={n}: RSS/conn {(r1-r0)/n:.2f} KiB, alloc live/conn {(a1[0]-a0[0])/n:.0f} B in {(a1[1]-a0[1])/n:.2f} blocks, fds/conn {(f1-f0)/n:.2f}")
proc.terminate(); proc.wait()
