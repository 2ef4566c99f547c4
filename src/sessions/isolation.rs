//! The isolation check: an escape battery run from inside one user's sandbox
//! against another's, as the sandboxed code would try it. Each probe reports
//! blocked, LEAKED or untested, with the evidence: what was tried and what
//! answered. Nothing is sent anywhere but loopback; every attempt that could
//! change something writes back a value that is already there, or asks for
//! nothing (e.g. `settimeofday(NULL, NULL)`).
//!
//! The probes are one table, [`PROBES`]: adding one is adding an entry.

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::engine::exec::ExecRequest;
use crate::engine::policy::SHM_SIZE;
use crate::engine::sandbox::Sandbox;

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Tried, and refused.
    Blocked,
    /// Got through.
    Leaked,
    /// Could not be tried here (a tool is missing, a marker did not start):
    /// not a pass.
    Untested,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Blocked => "blocked",
            Verdict::Leaked => "LEAKED",
            Verdict::Untested => "untested",
        }
    }
}

/// One probe's outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProbeResult {
    /// The probe's name, from [`PROBES`].
    pub probe: String,
    pub verdict: Verdict,
    /// True only for [`Verdict::Blocked`].
    pub blocked: bool,
    /// What was tried and what answered, `; `-separated, at most
    /// [`EVIDENCE_LIMIT`] characters.
    pub evidence: String,
}

impl ProbeResult {
    pub fn verdict(&self) -> &'static str {
        self.verdict.as_str()
    }
}

/// Evidence is cut to this many characters.
pub const EVIDENCE_LIMIT: usize = 600;

/// What the battery knows besides a probe's own output.
pub struct Context {
    /// Whether the marker process started in the other sandbox (the process
    /// probes prove nothing without it).
    pub marker_seen: bool,
    /// Set when sandpit's own file API read the other workspace's canary.
    pub file_api_leak: Option<String>,
    /// What the file API answered when asked for the other workspace.
    pub file_api_evidence: String,
}

/// A probe's script output, split by its line prefixes.
pub struct Outcome<'a> {
    /// `LEAKED ...` lines, without the prefix.
    pub leaked: Vec<&'a str>,
    /// `blocked ...` lines: tried and refused.
    pub refused: Vec<&'a str>,
    /// `UNTESTED ...` lines: could not try.
    pub untested: Vec<&'a str>,
    /// The script's exit code and standard error, for a probe that said
    /// nothing.
    pub exit_code: Option<i64>,
    pub stderr: String,
}

/// A judge turns a probe's outcome into a verdict and its evidence.
pub type Judge = fn(&Outcome, &Context) -> (Verdict, String);

/// One probe: a shell script run in the probing sandbox as its uid, and how
/// to judge what it printed. Scripts print `LEAKED <evidence>` for what got
/// through, `blocked <evidence>` for what was tried and refused, and
/// `UNTESTED <why>` for what could not be tried. They run under `sh` with
/// coreutils; a few system calls are made through python3 when the image has
/// it, and the evidence says so.
pub struct Probe {
    pub name: &'static str,
    pub script: &'static str,
    pub judge: Judge,
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Leaked when anything leaked, blocked when something was tried and
/// refused, untested otherwise.
pub fn by_lines(outcome: &Outcome, _context: &Context) -> (Verdict, String) {
    if !outcome.leaked.is_empty() {
        return (Verdict::Leaked, outcome.leaked.join("; "));
    }
    if !outcome.refused.is_empty() {
        let mut lines = outcome.refused.clone();
        lines.extend(outcome.untested.iter().copied());
        return (Verdict::Blocked, lines.join("; "));
    }
    if !outcome.untested.is_empty() {
        return (Verdict::Untested, outcome.untested.join("; "));
    }
    (
        Verdict::Untested,
        format!(
            "the probe printed nothing (exit {}): {}",
            outcome
                .exit_code
                .map_or("unknown".to_string(), |code| code.to_string()),
            outcome.stderr.trim()
        ),
    )
}

/// [`by_lines`], but untested when the other sandbox's marker process never
/// showed: looking for it proves nothing then.
fn needs_marker(outcome: &Outcome, context: &Context) -> (Verdict, String) {
    let (verdict, evidence) = by_lines(outcome, context);
    if verdict == Verdict::Blocked && !context.marker_seen {
        return (
            Verdict::Untested,
            "inconclusive: the marker process did not start in the other sandbox".to_string(),
        );
    }
    (verdict, evidence)
}

/// [`by_lines`] plus sandpit's own file API asked for the same path.
fn with_file_api(outcome: &Outcome, context: &Context) -> (Verdict, String) {
    let (verdict, evidence) = by_lines(outcome, context);
    match &context.file_api_leak {
        Some(leak) if verdict == Verdict::Leaked => (verdict, format!("{evidence}; {leak}")),
        Some(leak) => (Verdict::Leaked, leak.clone()),
        None => (
            verdict,
            format!("{evidence}; {}", context.file_api_evidence),
        ),
    }
}

/// Shell helpers every probe script starts with.
const PRELUDE_SH: &str = r##"
leak() { echo "LEAKED $*"; }
held() { echo "blocked $*"; }
untested() { echo "UNTESTED $*"; }
have() { command -v "$1" >/dev/null 2>&1; }
# Runs a command; $out holds its output and errors on one trimmed line.
try() { out=$("$@" 2>&1); rc=$?; out=$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-100); return $rc; }
# gVisor's kernel gives this fixed version string; the kernel writes
# /proc/version, so sandboxed code cannot fake it (a `dmesg` on PATH could).
in_gvisor() { grep -qs 'Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016' /proc/version; }
if in_gvisor; then GVISOR=1; else GVISOR=0; fi; export GVISOR
# Something that succeeded: inside gVisor it reached gVisor's own
# user-space kernel, not the host's.
got() { if [ "$GVISOR" = 1 ]; then held "$* - but inside gVisor's user-space kernel: the host kernel is not reached"; else leak "$*"; fi; }
# Runs python3 code with the helpers of $PY_PRELUDE, further arguments in
# sys.argv[1:].
py() {
  if have python3; then code=$1; shift; python3 -c "$PY_PRELUDE
$code" "$@" 2>&1 | cut -c1-400
  else untested "no python3 in this image to make the system call"; fi
}
# Writes a file's own value back: harmless where it succeeds.
write_back() {
  f=$1
  [ -e "$f" ] || { held "$f: not present"; return; }
  v=$(cat "$f" 2>/dev/null) || { held "read $f: refused"; return; }
  if try sh -c 'printf "%s\n" "$1" > "$2"' _ "$v" "$f"; then leak "wrote $f (its own value back)"; else held "write $f: ${out##*: }"; fi
}
"##;

/// Python helpers for the probes that make system calls.
const PRELUDE_PY: &str = r##"
import ctypes, os, platform, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
NR = {"x86_64": dict(ptrace=101, init_module=175, settimeofday=164, add_key=248, keyctl=250,
                     unshare=272, perf_event_open=298, finit_module=313, bpf=321),
      "aarch64": dict(ptrace=117, init_module=105, settimeofday=170, add_key=217, keyctl=219,
                      unshare=97, perf_event_open=241, finit_module=273, bpf=280)}.get(platform.machine())
if NR is None:
    print("UNTESTED no system call numbers for", platform.machine()); sys.exit(0)
GVISOR = os.environ.get("GVISOR") == "1"
def call(name, *args):
    ctypes.set_errno(0)
    r = libc.syscall(NR[name], *args)
    return r, ctypes.get_errno()
def report(what, r, e, contained=False):
    if r != -1:
        if contained and GVISOR:
            print("blocked %s (python3): succeeded inside gVisor's user-space kernel, the host kernel is not reached" % what)
        else:
            print("LEAKED %s (python3): succeeded" % what)
    else:
        print("blocked %s (python3): %s" % (what, os.strerror(e)))
"##;

/// Runs a setuid-root program waiting for a password on a FIFO, and prints
/// its `Uid:` and capability lines: what a setuid exec gains here.
const SETUID_SH: &str = r##"
setuid_exec() {
  prog=""
  for p in su passwd chsh chfn gpasswd newgrp; do
    path=$(command -v $p) || continue
    [ -u "$path" ] && { prog=$path; break; }
  done
  [ -n "$prog" ] || return 1
  fifo=/tmp/.sandpit-probe-fifo-$$
  rm -f "$fifo"; mkfifo "$fifo" || return 1
  "$prog" root < "$fifo" > /dev/null 2>&1 &
  pid=$!
  exec 3> "$fifo"
  i=0
  while [ $i -lt 50 ]; do
    [ "$(cat /proc/$pid/comm 2>/dev/null)" = "${prog##*/}" ] && break
    sleep 0.1; i=$((i+1))
  done
  status=$(grep -E '^(Uid|CapPrm|CapEff):' /proc/$pid/status 2>/dev/null | tr '\t\n' '  ')
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; exec 3>&-; rm -f "$fifo"
  [ -n "$status" ] || { untested "$prog exited before its ids could be read"; return 2; }
}
"##;

/// The battery, in the order it is shown. Scripts see `$TOKEN` (in the
/// canary and the marker), `$CANARY` (the canary's file name),
/// `$OTHER_USER`, `$OTHER_WORKSPACE` (its host path), `$OTHER_WORK_DIR`,
/// `$WORK_DIR`, and the limits the engine was given for the probing
/// sandbox: `$TMP_LIMIT`, `$SHM_LIMIT`, `$MEMORY_LIMIT` (bytes) and
/// `$PIDS_LIMIT`.
pub static PROBES: &[Probe] = &[
    Probe {
        name: "other workspace by path",
        script: r##"
path="$OTHER_WORKSPACE/$CANARY"
if try cat "$path"; then
  case $out in *"$TOKEN"*) leak "cat $path: read the canary" ;; *) held "cat $path: no canary in it" ;; esac
else held "cat $path: ${out##*: }"; fi
found=$(find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -name "$CANARY" -print 2>/dev/null | head -n 5)
for f in $found; do grep -qs "$TOKEN" "$f" && leak "found the canary at $f"; done
[ -n "$found" ] || held "find / -name $CANARY: nothing"
"##,
        judge: by_lines,
    },
    Probe {
        name: "other workspace via ..",
        script: r##"
tried=""
for path in "$WORK_DIR/../$OTHER_USER/$CANARY" "$WORK_DIR/../${OTHER_WORKSPACE##*/}/$CANARY" "$WORK_DIR/../../..$OTHER_WORKSPACE/$CANARY"; do
  case " $tried " in *" $path "*) continue ;; esac; tried="$tried $path"
  if try cat "$path"; then
    case $out in *"$TOKEN"*) leak "cat $path: read the canary" ;; *) held "cat $path: no canary" ;; esac
  else held "cat $path: ${out##*: }"; fi
done
"##,
        judge: with_file_api,
    },
    Probe {
        name: "other workspace via /proc/*/root",
        script: r##"
n=0
for root in /proc/[0-9]*/root; do
  n=$((n+1))
  for path in "$root$OTHER_WORK_DIR/$CANARY" "$root$OTHER_WORKSPACE/$CANARY"; do
    grep -qs "$TOKEN" "$path" && leak "read the canary at $path"
  done
done
held "cat /proc/PID/root$OTHER_WORK_DIR/$CANARY and /proc/PID/root$OTHER_WORKSPACE/$CANARY for all $n visible processes: no canary"
"##,
        judge: by_lines,
    },
    Probe {
        name: "other sandbox's processes",
        script: r##"
n=0
for c in /proc/[0-9]*/cmdline; do
  n=$((n+1))
  if tr '\0' ' ' < "$c" 2>/dev/null | grep -q "$TOKEN"; then leak "saw the other sandbox's marker process ${c%/cmdline}"; fi
done
held "searched the command lines of all $n visible processes for the other sandbox's marker: not there"
"##,
        judge: needs_marker,
    },
    Probe {
        name: "engine socket",
        script: r##"
for s in /var/run/docker.sock /run/docker.sock /run/containerd/containerd.sock /var/run/containerd/containerd.sock /run/podman/podman.sock /run/crio/crio.sock; do
  [ -e "$s" ] && leak "$s exists"
done
found=$(find / \( -path /proc -o -path /sys \) -prune -o -type s \( -name '*docker*' -o -name '*containerd*' -o -name '*podman*' -o -name '*crio*' \) -print 2>/dev/null | head -n 5)
for s in $found; do leak "engine-like socket $s"; done
[ -n "${DOCKER_HOST:-}" ] && leak "DOCKER_HOST=$DOCKER_HOST is set"
held "no docker, containerd, podman or cri-o socket at the usual paths or anywhere in the filesystem; DOCKER_HOST unset"
"##,
        judge: by_lines,
    },
    Probe {
        name: "host files via /proc/1/root",
        script: r##"
p1=$(tr '\0' ' ' < /proc/1/cmdline 2>/dev/null | cut -c1-60)
case $p1 in *systemd*|/sbin/init*|*dockerd*|*containerd*) leak "pid 1 is the host's: $p1" ;; esac
for path in /proc/1/root/var/lib/docker /proc/1/root/etc/docker "/proc/1/root$OTHER_WORKSPACE" /proc/1/root/var/run/docker.sock; do
  [ -e "$path" ] && leak "$path exists"
done
held "pid 1 is this sandbox's own ($p1); /proc/1/root has no /var/lib/docker, /etc/docker, docker.sock or $OTHER_WORKSPACE"
"##,
        judge: by_lines,
    },
    Probe {
        name: "host paths in mountinfo",
        script: r##"
n=0; sources=""
while read -r line; do
  set -- $line
  root=$4; mount_point=$5
  fs_type=${line#* - }; fs_type=${fs_type%% *}
  n=$((n+1))
  case $fs_type in proc|sysfs|tmpfs|devpts|mqueue|cgroup|cgroup2|overlay|shm) continue ;; esac
  case $mount_point in
    /|"$WORK_DIR"|/etc/hosts|/etc/hostname|/etc/resolv.conf|/usr/sbin/docker-init|/sbin/docker-init|/proc/*|/sys/*|/dev/*) ;;
    # sandpit's runner, from its own volume: fine while read-only.
    /.sandpit-runner) case $6 in ro|ro,*) ;; *) leak "the runner's volume at $mount_point is writable ($6)" ;; esac ;;
    *) leak "host folder $root mounted at $mount_point ($fs_type)" ;;
  esac
  case $root in
    /) ;;
    *) sources="$sources $root"; [ -e "$root" ] && [ "$root" != "$mount_point" ] && leak "host path $root (source of $mount_point) is reachable" ;;
  esac
done < /proc/self/mountinfo
held "$n mounts: none from the host but the workspace, /etc/hosts, hostname, resolv.conf, init and the read-only runner; their host paths are not reachable:$(echo "$sources" | cut -c1-160)"
"##,
        judge: by_lines,
    },
    Probe {
        name: "write /proc/sys",
        script: r##"
for f in /proc/sys/kernel/panic /proc/sys/vm/swappiness /proc/sys/fs/file-max; do write_back "$f"; done
"##,
        judge: by_lines,
    },
    Probe {
        name: "write /sys",
        script: r##"
for f in /sys/kernel/uevent_helper /sys/kernel/mm/ksm/run /sys/module/printk/parameters/time; do write_back "$f"; done
grep -qs ' /sys rw' /proc/self/mountinfo && leak "/sys is mounted read-write"
held "/sys is mounted read-only"
"##,
        judge: by_lines,
    },
    Probe {
        name: "write /sys/fs/cgroup",
        script: r##"
seen=0
for f in /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cgroup.procs; do
  [ -e "$f" ] || continue; seen=1; write_back "$f"
done
for d in /sys/fs/cgroup /sys/fs/cgroup/memory /sys/fs/cgroup/pids; do
  [ -d "$d" ] || continue; seen=1
  if try mkdir "$d/sandpit-probe-$$"; then rmdir "$d/sandpit-probe-$$"; leak "created the cgroup $d/sandpit-probe-$$"; else held "mkdir $d/sandpit-probe: ${out##*: }"; fi
done
[ $seen = 1 ] || held "no cgroup files are visible (/sys/fs/cgroup is not mounted)"
"##,
        judge: by_lines,
    },
    Probe {
        name: "mount a filesystem",
        script: r##"
dir=/tmp/.sandpit-probe-mnt-$$; mkdir -p "$dir"
if have mount; then
  if try mount -t tmpfs none "$dir"; then umount "$dir" 2>/dev/null; got "mount -t tmpfs none $dir: succeeded"; else held "mount -t tmpfs: $out"; fi
fi
py 'r = libc.mount(b"none", sys.argv[1].encode(), b"tmpfs", 0, None); e = ctypes.get_errno()
if r == 0: libc.umount2(sys.argv[1].encode(), 2)
report("mount(tmpfs)", r, e, contained=True)' "$dir"
rmdir "$dir" 2>/dev/null
"##,
        judge: by_lines,
    },
    Probe {
        name: "unshare a user namespace",
        script: r##"
if have unshare; then
  if try unshare -U true; then got "unshare -U: succeeded"; else held "unshare -U: ${out##*: }"; fi
fi
py 'r, e = call("unshare", 0x10000000); report("unshare(CLONE_NEWUSER)", r, e, contained=True)'
"##,
        judge: by_lines,
    },
    Probe {
        name: "unshare a mount namespace",
        script: r##"
if have unshare; then
  if try unshare -m true; then got "unshare -m: succeeded"; else held "unshare -m: ${out##*: }"; fi
  if try unshare -U -m -r true; then got "unshare -Umr (a mount namespace through a user namespace): succeeded"; else held "unshare -Umr: ${out##*: }"; fi
fi
py 'r, e = call("unshare", 0x00020000); report("unshare(CLONE_NEWNS)", r, e, contained=True)'
"##,
        judge: by_lines,
    },
    Probe {
        name: "ptrace another process",
        script: r##"
py 'me = os.getuid(); tried = []
for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
    if pid in (os.getpid(), os.getppid()): continue
    try:
        uid = int(open("/proc/%d/status" % pid).read().split("Uid:")[1].split()[1])
        cmd = open("/proc/%d/cmdline" % pid, "rb").read().replace(b"\0", b" ").decode(errors="replace")[:40]
    except (OSError, IndexError): continue
    r, e = call("ptrace", 16, pid, 0, 0)
    if r == 0:
        os.waitpid(pid, 0x40000000); call("ptrace", 17, pid, 0, 0)
    outside = uid != me or os.environ["TOKEN"] in cmd
    if r == 0 and outside:
        print("LEAKED PTRACE_ATTACH to pid %d (uid %d, %s) succeeded" % (pid, uid, cmd))
    tried.append("pid %d (uid %d, %s): %s" % (pid, uid, cmd.strip(), "attached, a process of this sandbox and uid" if r == 0 else os.strerror(e)))
print("blocked PTRACE_ATTACH (python3) reaches no process of another uid or sandbox; tried " + ", ".join(tried[:4]))'
"##,
        judge: by_lines,
    },
    Probe {
        name: "raw socket",
        script: r##"
py 'for fam, name in ((socket.AF_INET, "AF_INET"), (socket.AF_INET6, "AF_INET6")):
    try:
        socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_ICMP if fam == socket.AF_INET else socket.IPPROTO_ICMPV6).close()
        print("LEAKED socket(%s, SOCK_RAW) (python3): opened" % name)
    except OSError as err:
        print("blocked socket(%s, SOCK_RAW) (python3): %s" % (name, err.strerror))'
"##,
        judge: by_lines,
    },
    Probe {
        name: "packet socket",
        script: r##"
py 'try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    print("LEAKED socket(AF_PACKET, SOCK_RAW) (python3): opened")
except OSError as err:
    print("blocked socket(AF_PACKET, SOCK_RAW) (python3): %s" % err.strerror)'
"##,
        judge: by_lines,
    },
    Probe {
        name: "reach the network",
        script: r##"
ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')
for i in $ifaces; do [ "$i" = lo ] || leak "interface $i"; done
hex_ip() { h=$1; printf '%d.%d.%d.%d' 0x$(echo $h | cut -c7-8) 0x$(echo $h | cut -c5-6) 0x$(echo $h | cut -c3-4) 0x$(echo $h | cut -c1-2); }
tail -n +2 /proc/net/route 2>/dev/null | while read -r iface dest gw rest; do
  [ -n "$iface" ] && leak "IPv4 route on $iface to $(hex_ip $dest) via $(hex_ip $gw)"
done
while read -r line; do
  set -- $line
  [ "${10}" = lo ] || leak "IPv6 route on ${10}"
done < /proc/net/ipv6_route 2>/dev/null
held "interfaces (/proc/net/dev): $ifaces; no route off loopback (nothing was sent)"
"##,
        judge: by_lines,
    },
    Probe {
        name: "setuid binary gains a uid",
        script: r##"
found=$(find / -xdev \( -perm -4000 -o -perm -2000 \) -type f 2>/dev/null | tr '\n' ' ' | cut -c1-120)
setuid_exec; ran=$?
if [ $ran = 0 ]; then
  set -- $status
  # Uid: real effective saved fs
  if [ "$3" != "$(id -u)" ]; then leak "$prog became uid $3 after exec ($status)"; else held "$prog ran as uid $3, not its owner's ($status)"; fi
elif [ $ran = 1 ]; then held "no setuid-root program to run; setuid/setgid files: ${found:-none}"; fi
"##,
        judge: by_lines,
    },
    Probe {
        name: "capabilities after setuid exec",
        script: r##"
setuid_exec; ran=$?
if [ $ran = 0 ]; then
  case $status in
    *"CapPrm: 0000000000000000"*"CapEff: 0000000000000000"*) held "$prog after exec: $status" ;;
    *) leak "$prog gained capabilities after exec: $status" ;;
  esac
elif [ $ran = 1 ]; then held "no setuid-root program to exec"; fi
"##,
        judge: by_lines,
    },
    Probe {
        name: "gain capabilities",
        script: r##"
caps=""
while read -r key value; do
  case $key in
    CapEff:|CapPrm:|CapBnd:|CapAmb:) caps="$caps $key $value"; [ "$value" = 0000000000000000 ] || leak "$key $value" ;;
    NoNewPrivs:) caps="$caps NoNewPrivs $value"; [ "$value" = 1 ] || leak "NoNewPrivs $value" ;;
  esac
done < /proc/self/status
[ "$(id -u)" = 0 ] && leak "runs as root"
held "uid $(id -u);$caps"
"##,
        judge: by_lines,
    },
    Probe {
        name: "write outside the workspace",
        script: r##"
for dir in / /etc /usr /usr/local /var /var/tmp /run/lock /opt /root "$WORK_DIR/.."; do
  [ -d "$dir" ] || continue
  probe="$dir/.sandpit-isolation-probe-$$"
  if try touch "$probe"; then rm -f "$probe"; leak "wrote into $dir"; else held "touch $dir/...: ${out##*: }"; fi
done
"##,
        judge: by_lines,
    },
    Probe {
        name: "/dev/mem, /dev/kmem, /dev/port",
        script: r##"
for d in /dev/mem /dev/kmem /dev/port; do
  if [ -e "$d" ]; then
    if try head -c 1 "$d"; then leak "read $d"; else held "read $d: ${out##*: }"; fi
  else held "$d: not present"; fi
done
"##,
        judge: by_lines,
    },
    Probe {
        name: "/dev/kmsg and dmesg",
        script: r##"
if [ -e /dev/kmsg ]; then
  if try head -c 1 /dev/kmsg; then leak "read /dev/kmsg"; else held "read /dev/kmsg: ${out##*: }"; fi
else held "/dev/kmsg: not present"; fi
if have dmesg; then
  if try dmesg; then got "dmesg: read the kernel log ($out)"; else held "dmesg: ${out##*: }"; fi
fi
"##,
        judge: by_lines,
    },
    Probe {
        name: "block devices",
        script: r##"
found=$(find /dev -type b 2>/dev/null | head -n 5)
for d in $found; do
  if try head -c 1 "$d"; then leak "read block device $d"; else held "read $d: ${out##*: }"; fi
done
node=/tmp/.sandpit-probe-blk-$$
if try mknod "$node" b 7 0; then
  made="mknod $node b 7 0 (loop0): created a block device node"
  if try head -c 1 "$node"; then leak "$made, and read it"; else got "$made; opening it: ${out##*: }"; fi
  rm -f "$node"
else held "mknod b 7 0: ${out##*: }"; fi
[ -n "$found" ] || held "no block device nodes in /dev"
"##,
        judge: by_lines,
    },
    Probe {
        name: "kernel keyring",
        script: r##"
py 'r, e = call("add_key", b"user", b"sandpit-probe", b"x", 1, -2); report("add_key(user, KEY_SPEC_PROCESS_KEYRING)", r, e)
r, e = call("keyctl", 0, -3, 0); report("keyctl(GET_KEYRING_ID, session keyring)", r, e)'
"##,
        judge: by_lines,
    },
    Probe {
        name: "perf_event_open",
        script: r##"
py 'attr = (ctypes.c_uint8 * 128)()
ctypes.c_uint32.from_buffer(attr, 0).value = 1
ctypes.c_uint32.from_buffer(attr, 4).value = 128
r, e = call("perf_event_open", attr, 0, -1, -1, 0)
if r >= 0: os.close(r)
report("perf_event_open(software clock, this process)", r, e)'
"##,
        judge: by_lines,
    },
    Probe {
        name: "bpf",
        script: r##"
py 'attr = (ctypes.c_uint32 * 16)(2, 4, 4, 1)
r, e = call("bpf", 0, attr, 64)
if r >= 0: os.close(r)
report("bpf(BPF_MAP_CREATE, array)", r, e)'
"##,
        judge: by_lines,
    },
    Probe {
        name: "load a kernel module",
        script: r##"
py 'fd = os.open("/dev/null", os.O_RDONLY)
r, e = call("finit_module", fd, b"", 0)
if r == -1 and e != 1:
    print("LEAKED finit_module(/dev/null) (python3): passed the permission check, then %s" % os.strerror(e))
else:
    report("finit_module(/dev/null)", r, e)
r, e = call("init_module", None, 0, b"")
if r == -1 and e != 1:
    print("LEAKED init_module(empty) (python3): passed the permission check, then %s" % os.strerror(e))
else:
    report("init_module(empty)", r, e)'
"##,
        judge: by_lines,
    },
    Probe {
        name: "change the clock",
        script: r##"
py 'r, e = call("settimeofday", None, None); report("settimeofday(NULL, NULL) (asks for no change)", r, e)'
"##,
        judge: by_lines,
    },
    Probe {
        name: "change the hostname",
        script: r##"
name=$(cat /proc/sys/kernel/hostname)
if have hostname; then
  if try hostname "$name"; then leak "hostname $name (its own name back): succeeded"; else held "hostname $name: ${out##*: }"; fi
fi
py 'try:
    socket.sethostname(socket.gethostname()); print("LEAKED sethostname (python3): succeeded")
except OSError as err:
    print("blocked sethostname(its own name) (python3): %s" % err.strerror)'
"##,
        judge: by_lines,
    },
    Probe {
        name: "workspace disk quota",
        script: r##"
# A hard limit shows as a workspace filesystem smaller than the engine's
# (where /etc/hostname lives): nothing is written to find out.
set -- $(stat -f -c '%b %S %a' "$WORK_DIR") ; ws_total=$(($1 * $2)); ws_free=$(($3 * $2))
set -- $(stat -f -c '%b %S %a' /etc/hostname) ; host_total=$(($1 * $2))
mib() { echo "$(($1 >> 20)) MiB"; }
if [ "$ws_total" -lt "$host_total" ]; then
  held "the workspace filesystem holds $(mib $ws_total) ($(mib $ws_free) free), apart from the engine's $(mib $host_total): writes stop there"
else
  leak "no limit: the workspace is on a $(mib $ws_total) filesystem like the engine's own, $(mib $ws_free) free: a write can fill the host's disk"
fi
"##,
        judge: by_lines,
    },
    Probe {
        name: "/tmp size limit",
        script: r##"
fill_check() {
  dir=$1; limit=$2
  fs=$(stat -f -c %T "$dir" 2>/dev/null)
  set -- $(stat -f -c '%b %S' "$dir"); size=$(($1 * $2))
  if [ "$fs" != tmpfs ]; then leak "$dir is $fs, not a size-limited tmpfs"; return; fi
  if [ "$size" -gt "$limit" ]; then leak "$dir holds $size bytes, above the limit $limit"; return; fi
  f="$dir/.sandpit-probe-fill-$$"
  if try sh -c 'head -c "$1" /dev/zero > "$2"' _ $((size + 1048576)) "$f"; then rm -f "$f"; leak "wrote $((size + 1048576)) bytes into $dir ($size bytes)"; else rm -f "$f"; held "$dir is a tmpfs of $size bytes (limit $limit); writing 1 MiB past it: ${out##*: }"; fi
}
fill_check /tmp "$TMP_LIMIT"
"##,
        judge: by_lines,
    },
    Probe {
        name: "/dev/shm size limit",
        script: r##"
fs=$(stat -f -c %T /dev/shm 2>/dev/null)
set -- $(stat -f -c '%b %S' /dev/shm); size=$(($1 * $2))
if [ "$fs" != tmpfs ]; then leak "/dev/shm is $fs, not a size-limited tmpfs"
elif [ "$size" -gt "$SHM_LIMIT" ]; then leak "/dev/shm holds $size bytes, above the limit $SHM_LIMIT"
else
  f=/dev/shm/.sandpit-probe-fill-$$
  if try sh -c 'head -c "$1" /dev/zero > "$2"' _ $((size + 1048576)) "$f"; then rm -f "$f"; leak "wrote $((size + 1048576)) bytes into /dev/shm ($size bytes)"; else rm -f "$f"; held "/dev/shm is a tmpfs of $size bytes (limit $SHM_LIMIT); writing 1 MiB past it: ${out##*: }"; fi
fi
"##,
        judge: by_lines,
    },
    Probe {
        name: "pids limit",
        script: r##"
file=""
for f in /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max; do [ -r "$f" ] && { file=$f; break; }; done
if [ -n "$file" ]; then
  max=$(cat "$file")
  if [ "$max" = max ] || [ "$max" -gt "$PIDS_LIMIT" ]; then leak "$file is $max, the policy asks for $PIDS_LIMIT"; else held "$file is $max (policy $PIDS_LIMIT)"; fi
elif [ "$GVISOR" = 1 ]; then
  # Measured: gVisor's guest processes and its own threads count against
  # the host's limit together, and at the limit the whole sandbox dies
  # rather than fork failing, so flooding here would take it down.
  untested "gVisor shows no pids cgroup, and a fork flood to find the limit would kill the sandbox (gVisor dies at the host's pids limit instead of failing fork)"
elif [ "$PIDS_LIMIT" -le 4096 ]; then
  # No cgroup to read (gVisor): start sleepers until fork fails, then stop them.
  pidfile=/tmp/.sandpit-probe-pids-$$
  : > "$pidfile"
  ( i=0; while [ $i -lt $((PIDS_LIMIT + 8)) ]; do sleep 60 & echo $! >> "$pidfile"; i=$((i+1)); done ) 2>/dev/null
  started=$(wc -l < "$pidfile")
  kill -9 $(cat "$pidfile") 2>/dev/null; rm -f "$pidfile"
  if [ "$started" -ge "$PIDS_LIMIT" ]; then leak "started $started processes; the policy's limit is $PIDS_LIMIT"; else held "fork failed after $started more processes (limit $PIDS_LIMIT, no cgroup file visible)"; fi
else untested "no pids cgroup file visible and a limit of $PIDS_LIMIT is too many processes to try"; fi
"##,
        judge: by_lines,
    },
    Probe {
        name: "memory limit",
        script: r##"
file=""
for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do [ -r "$f" ] && { file=$f; break; }; done
if [ -n "$file" ]; then
  max=$(cat "$file")
  if [ "$max" = max ] || [ "$max" -gt "$MEMORY_LIMIT" ]; then leak "$file is $max, the policy asks for $MEMORY_LIMIT"; else held "$file is $max (policy $MEMORY_LIMIT)"; fi
else
  # gVisor sizes its memory to the container's limit.
  total=$(( $(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2) * 1024 ))
  if [ "$total" -gt "$MEMORY_LIMIT" ]; then leak "no memory cgroup visible and MemTotal is $total bytes, above the policy's $MEMORY_LIMIT"; else held "no memory cgroup visible; MemTotal is $total bytes (policy $MEMORY_LIMIT)"; fi
fi
"##,
        judge: by_lines,
    },
];

const CANARY_FILE: &str = ".sandpit-isolation-canary";

/// Run in the target sandbox until it sees its own marker process.
const MARKER_SH: &str = r#"
for cmdline in /proc/[0-9]*/cmdline; do
  if tr '\0' ' ' < "$cmdline" 2>/dev/null | grep -q "$TOKEN"; then echo seen; fi
done
"#;

fn new_token() -> String {
    // Digits only: it also serves as a sleep duration's fraction.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// Runs every probe of [`PROBES`] from `from` against `target`, whose
/// workspace on the host is `target_workspace`, in table order. Leaves a
/// canary file in the target's workspace and a marker process in the target
/// while it runs, and removes both after. Briefly fills `from`'s `/tmp` and
/// `/dev/shm` to their limits (the probe's file is removed at once).
///
/// Errors when the canary cannot be placed or a probe cannot be run at all.
pub async fn check_isolation(
    from: &Sandbox,
    target: &Sandbox,
    target_workspace: &str,
) -> anyhow::Result<Vec<ProbeResult>> {
    let token = new_token();
    target
        .write_file(CANARY_FILE, format!("{token}\n").into_bytes())
        .await
        .context("cannot place the canary in the other user's workspace")?;
    // A process in the target whose command line carries the token.
    let marker_cancel = CancellationToken::new();
    let marker = {
        let target = target.clone();
        let cancel = marker_cancel.clone();
        let script = format!("exec sleep 600.{token}");
        tokio::spawn(async move {
            target
                .exec(
                    ExecRequest::shell(script).timeout(Duration::from_secs(600)),
                    None,
                    cancel,
                )
                .await
        })
    };
    let marker_seen = wait_for_marker(target, &token).await;

    let results = run_probes(from, target, target_workspace, &token, marker_seen).await;

    marker_cancel.cancel();
    let _ = marker.await;
    let _ = target.delete(CANARY_FILE).await;
    results
}

async fn wait_for_marker(target: &Sandbox, token: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let probe = ExecRequest::shell(MARKER_SH).env("TOKEN", token);
        if let Ok(result) = target.exec_collect(probe).await
            && result.stdout_text().contains("seen")
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn run_probes(
    from: &Sandbox,
    target: &Sandbox,
    target_workspace: &str,
    token: &str,
    marker_seen: bool,
) -> anyhow::Result<Vec<ProbeResult>> {
    let policy = from
        .inspect()
        .await
        .context("cannot read the probing sandbox's limits")?
        .policy;
    // Sandpit's own file API must refuse the other workspace too.
    let through_api = format!("../{}/{CANARY_FILE}", target.user());
    let (file_api_leak, file_api_evidence) = match from.read_file(&through_api, 4096).await {
        Ok(data) if String::from_utf8_lossy(&data.bytes).contains(token) => (
            Some(format!("file API read_file({through_api}) read the canary")),
            String::new(),
        ),
        Ok(_) => (
            None,
            format!("file API read_file({through_api}): no canary"),
        ),
        Err(err) => (None, format!("file API read_file({through_api}): {err:#}")),
    };
    let context = Context {
        marker_seen,
        file_api_leak,
        file_api_evidence,
    };
    let mut results = Vec::with_capacity(PROBES.len());
    for probe in PROBES {
        let script = format!("{PRELUDE_SH}{SETUID_SH}{}", probe.script);
        let request = ExecRequest::shell(script)
            .env("TOKEN", token)
            .env("CANARY", CANARY_FILE)
            .env("OTHER_WORKSPACE", target_workspace)
            .env("OTHER_USER", target.user().as_str())
            .env("OTHER_WORK_DIR", target.work_dir())
            .env("WORK_DIR", from.work_dir())
            .env("TMP_LIMIT", policy.tmp_size.0.to_string())
            .env("SHM_LIMIT", SHM_SIZE.to_string())
            .env("MEMORY_LIMIT", policy.memory.0.to_string())
            .env("PIDS_LIMIT", policy.pids_limit.to_string())
            .env("PY_PRELUDE", PRELUDE_PY)
            .timeout(Duration::from_secs(60));
        let result = from
            .exec_collect(request)
            .await
            .with_context(|| format!("probe `{}` could not run", probe.name))?;
        let stdout = result.stdout_text();
        let lines = |prefix: &str| -> Vec<&str> {
            stdout
                .lines()
                .filter_map(|line| line.strip_prefix(prefix))
                .map(str::trim)
                .collect()
        };
        let outcome = Outcome {
            leaked: lines("LEAKED "),
            refused: lines("blocked "),
            untested: lines("UNTESTED "),
            exit_code: result.exit_code,
            stderr: result.stderr_text().chars().take(200).collect(),
        };
        let (mut verdict, mut evidence) = (probe.judge)(&outcome, &context);
        if result.timed_out {
            verdict = Verdict::Untested;
            evidence = format!("the probe ran past its 60 s limit; {evidence}");
        }
        if evidence.chars().count() > EVIDENCE_LIMIT {
            evidence = evidence.chars().take(EVIDENCE_LIMIT - 1).collect();
            evidence.push('…');
        }
        results.push(ProbeResult {
            probe: probe.name.to_string(),
            verdict,
            blocked: verdict == Verdict::Blocked,
            evidence,
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome<'a>(leaked: &[&'a str], refused: &[&'a str], untested: &[&'a str]) -> Outcome<'a> {
        Outcome {
            leaked: leaked.to_vec(),
            refused: refused.to_vec(),
            untested: untested.to_vec(),
            exit_code: Some(0),
            stderr: String::new(),
        }
    }

    fn context() -> Context {
        Context {
            marker_seen: true,
            file_api_leak: None,
            file_api_evidence: "file API: refused".to_string(),
        }
    }

    #[test]
    fn probe_names_are_unique_and_fit_the_table() {
        let mut names: Vec<&str> = PROBES.iter().map(|p| p.name).collect();
        assert!(names.len() >= 20, "{}", names.len());
        assert!(names.iter().all(|name| name.len() <= 32), "{names:?}");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PROBES.len());
    }

    #[test]
    fn judges_weigh_leaks_over_refusals_and_need_something_tried() {
        let ctx = context();
        let (verdict, evidence) = by_lines(&outcome(&["read x"], &["y: denied"], &[]), &ctx);
        assert_eq!((verdict, evidence.as_str()), (Verdict::Leaked, "read x"));
        let (verdict, evidence) = by_lines(&outcome(&[], &["y: denied"], &["no python3"]), &ctx);
        assert_eq!(verdict, Verdict::Blocked);
        assert_eq!(evidence, "y: denied; no python3");
        let (verdict, _) = by_lines(&outcome(&[], &[], &["no python3"]), &ctx);
        assert_eq!(verdict, Verdict::Untested);
        let (verdict, evidence) = by_lines(&outcome(&[], &[], &[]), &ctx);
        assert_eq!(verdict, Verdict::Untested);
        assert!(evidence.contains("printed nothing"), "{evidence}");
    }

    #[test]
    fn the_process_probe_needs_its_marker_and_the_file_api_counts() {
        let mut ctx = context();
        ctx.marker_seen = false;
        let (verdict, evidence) = needs_marker(&outcome(&[], &["not there"], &[]), &ctx);
        assert_eq!(verdict, Verdict::Untested);
        assert!(evidence.contains("marker"), "{evidence}");
        let mut ctx = context();
        let (verdict, evidence) = with_file_api(&outcome(&[], &["cat: denied"], &[]), &ctx);
        assert_eq!(verdict, Verdict::Blocked);
        assert!(evidence.ends_with("file API: refused"), "{evidence}");
        ctx.file_api_leak = Some("file API read it".to_string());
        let (verdict, evidence) = with_file_api(&outcome(&[], &["cat: denied"], &[]), &ctx);
        assert_eq!(
            (verdict, evidence.as_str()),
            (Verdict::Leaked, "file API read it")
        );
    }
}
