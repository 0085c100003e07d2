#!/bin/sh
# /init of the USB rig guest: PID 1 in the initramfs, run by dash.
#
# dash, not busybox sh, is /bin/sh here: Debian's busybox-static runs its own
# applets before $PATH for mount, modprobe, blockdev and lsmod, so under busybox
# sh "mount" would not be util-linux's mount that a laptop has.
export PATH=/usr/sbin:/usr/bin
export HOME=/root
bb=/usr/bin/busybox
cd /

log() { echo "rig-init: $*"; }

die() {
  log "$*"
  # PID 1 exiting panics the kernel; with panic=-1 and QEMU's -no-reboot that ends QEMU.
  exit 1
}

$bb mkdir -p /proc /sys /dev /run /tmp /root
$bb mount -t proc -o nosuid,nodev,noexec proc /proc || die 'cannot mount /proc'
$bb mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || die 'cannot mount /sys'
$bb mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev || die 'cannot mount /dev'
$bb mkdir -p /dev/pts /dev/shm
$bb mount -t devpts -o gid=5,mode=620 devpts /dev/pts
$bb mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
$bb mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run || die 'cannot mount /run'
$bb mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp || die 'cannot mount /tmp'
$bb ln -sf /proc/self/mounts /etc/mtab

# Modules before udev starts, so coldplug sees every device already bound.
# The list is written by build-guest.ts with only modules this kernel has.
# shellcheck disable=SC2046
modprobe -a $(cat /etc/rig/modules) || log 'some modules failed to load'
# Two emulated UDCs (dummy_udc.0, dummy_udc.1): two gadgets can be plugged at once.
modprobe dummy_hcd num=2 || log 'dummy_hcd failed to load'
$bb mount -t configfs configfs /sys/kernel/config || log 'cannot mount configfs'

# Loopback only: the guest gets no network device (QEMU runs with -nodefaults).
$bb ip link set lo up

# ORDER MATTERS: udevd, then trigger, then settle, and only then anything that
# listens with `udevadm monitor --udev`. Started earlier, a listener silently
# sees kernel events only.
mkdir -p /run/udev
/usr/lib/systemd/systemd-udevd --daemon || die 'systemd-udevd did not start'
udevadm trigger --type=subsystems --action=add
udevadm trigger --type=devices --action=add
udevadm settle --timeout=60 || log 'udevadm settle timed out'

# The command channel is the virtio-serial port QEMU names invigilator.cmd.
# Found through sysfs, not /dev/virtio-ports/, so it does not hang on a udev rule.
port=
tries=0
while [ -z "$port" ] && [ "$tries" -lt 100 ]; do
  for name in /sys/class/virtio-ports/*/name; do
    [ -r "$name" ] && [ "$(cat "$name")" = invigilator.cmd ] && port=/dev/$($bb basename "$($bb dirname "$name")")
  done
  [ -n "$port" ] || $bb sleep 0.1
  tries=$((tries + 1))
done
[ -n "$port" ] || die 'no virtio-serial port named invigilator.cmd'

# A virtio console port can be opened only once: open it once, read and write on fd 3.
exec 3<>"$port" || die "cannot open $port"
mkdir -p /run/rig
limit=1048576
log "ready on $port"
echo "__RIG_READY__ $(uname -r)" >&3

# One request a line: "<id> <timeout seconds> <base64 of the script>". The reply
# is a begin marker, the script's output (at most $limit bytes) and an end
# marker carrying the exit code. The script's stdin is /dev/null, so a command
# that reads stdin cannot swallow the next request.
while IFS=' ' read -r id seconds script <&3; do
  case "$id" in '' | *[!A-Za-z0-9]*) continue ;; esac
  case "$seconds" in '' | *[!0-9]*) seconds=60 ;; esac
  printf '%s' "$script" | $bb base64 -d >/run/rig/cmd.sh 2>/dev/null
  printf '__RIG_BEGIN_%s__\n' "$id" >&3
  $bb timeout -s KILL "$seconds" /bin/sh /run/rig/cmd.sh </dev/null >/run/rig/out 2>&1
  code=$?
  $bb head -c "$limit" /run/rig/out >&3
  size=$($bb wc -c </run/rig/out)
  [ "$size" -gt "$limit" ] && printf '\n[rig: output truncated to %s of %s bytes]' "$limit" "$size" >&3
  printf '\n__RIG_END_%s_%s__\n' "$id" "$code" >&3
  rm -f /run/rig/out /run/rig/cmd.sh
done
die 'command channel closed'
