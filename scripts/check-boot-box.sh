#!/usr/bin/env bash
# A Vagrant box that boots by itself (golab image build's VirtualBox and vagrant-qemu
# boxes), checked without VirtualBox or vagrant-qemu (neither is on these machines):
#   scripts/check-boot-box.sh NAME.virtualbox.box|NAME.qemu.box [NAME.manifest.json]
# VirtualBox's box:
#   1. the tar holds box.ovf, box-disk1.vmdk, metadata.json (provider virtualbox) and a
#      Vagrantfile whose base_mac is the OVF adapter's;
#   2. box.ovf parses, names the VMDK, says its exact virtual size, a 64-bit Debian, a
#      SATA (AHCI) controller holding the disk and a NAT e1000 adapter;
#   3. the VMDK is streamOptimized and boots under QEMU on the hardware the OVF asks for
#      (SeaBIOS, an AHCI controller, an e1000 on user networking).
# vagrant-qemu's box: libvirt's format (metadata.json, Vagrantfile, box.img, qcow2), and
# box.img boots on the machine golab's Vagrantfile gives vagrant-qemu (q35, a virtio disk,
# virtio-net-pci).
# Both: GRUB from the disk, no kernel given (the console shows root=UUID); the lab user
# logs in with Vagrant's insecure key over DHCP's address; passwordless sudo; and (with
# the manifest) go, dlv, gdb and readelf answer exactly as the manifest lists them.
# The disk is opened with snapshot=on: the box is not changed. Software emulation: about
# 1-2 minutes to ssh on 2 cores.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 NAME.virtualbox.box|NAME.qemu.box [NAME.manifest.json]" >&2; exit 2; }
box=$(realpath "$1")
manifest=${2:+$(realpath "$2")}
cd "$(dirname "$0")/.."
t0=$(date +%s)
say() { echo "check-boot-box: [$(($(date +%s) - t0))s] $*" >&2; }
d=$(mktemp -d)
cleanup() {
  if [ -f "$d/qemu.pid" ]; then kill "$(cat "$d/qemu.pid")" 2>/dev/null || true; fi
  rm -rf "$d"
}
trap cleanup EXIT

tar -C "$d" -xf "$box"
kind=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["provider"])' "$d/metadata.json")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$kind" = libvirt ]; then
  for f in box.img Vagrantfile; do
    [ -f "$d/$f" ] || { echo "check-boot-box: the box has no $f" >&2; exit 1; }
  done
  python3 - "$d" <<'PY'
import json, math, subprocess, sys
d = sys.argv[1]
m = json.load(open(f"{d}/metadata.json"))
i = json.loads(subprocess.check_output(["qemu-img", "info", "--output=json", f"{d}/box.img"]))
assert i["format"] == "qcow2" and m["format"] == "qcow2", (i["format"], m)
assert m["virtual_size"] == math.ceil(i["virtual-size"] / 2**30), (m, i["virtual-size"])
assert 'config.ssh.username = "golab"' in open(f"{d}/Vagrantfile").read()
print(f"check-boot-box: vagrant-qemu's box: libvirt format, box.img qcow2 of {i['virtual-size']} bytes", file=sys.stderr)
PY
  hw="q35, a virtio disk, virtio-net-pci"
  qemu=(qemu-system-x86_64 -machine q35 -accel tcg -cpu max -m 2048 -smp 2
    -drive "file=$d/box.img,format=qcow2,if=virtio,snapshot=on"
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" -device "virtio-net-pci,netdev=n0")
  disk_driver=/sys/bus/virtio/drivers/virtio_blk
else
for f in box.ovf box-disk1.vmdk metadata.json Vagrantfile; do
  [ -f "$d/$f" ] || { echo "check-boot-box: the box has no $f" >&2; exit 1; }
done
virtual=$(qemu-img info --output=json "$d/box-disk1.vmdk" | python3 -c 'import json,sys; i=json.load(sys.stdin); print(i["virtual-size"]); assert i["format"]=="vmdk", i["format"]; assert i["format-specific"]["data"]["create-type"]=="streamOptimized", i["format-specific"]')
python3 - "$d" "$virtual" <<'PY'
import json, re, sys, xml.etree.ElementTree as ET
d, virtual = sys.argv[1], int(sys.argv[2])
ns = {"o": "http://schemas.dmtf.org/ovf/envelope/1",
      "r": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData",
      "v": "http://www.virtualbox.org/ovf/machine"}
O = "{%s}" % ns["o"]
root = ET.parse(f"{d}/box.ovf").getroot()
f = root.find("o:References/o:File", ns)
assert f.get(O + "href") == "box-disk1.vmdk", f.attrib
disk = root.find("o:DiskSection/o:Disk", ns)
assert int(disk.get(O + "capacity")) == virtual, (disk.attrib, virtual)
assert disk.get(O + "fileRef") == f.get(O + "id")
assert disk.get(O + "format").endswith("#streamOptimized")
os_ = root.find("o:VirtualSystem/o:OperatingSystemSection", ns)
assert os_.get(O + "id") == "96" and os_.find("v:OSType", ns).text == "Debian_64"
items = root.findall("o:VirtualSystem/o:VirtualHardwareSection/o:Item", ns)
def field(i, n):
    e = i.find(f"r:{n}", ns)
    return None if e is None else e.text
by_type = {}
for i in items:
    by_type.setdefault(field(i, "ResourceType"), []).append(i)
sata = by_type["20"][0]
assert field(sata, "ResourceSubType") == "AHCI"
hd = by_type["17"][0]
assert field(hd, "Parent") == field(sata, "InstanceID") and field(hd, "HostResource") == "/disk/vmdisk1"
nic = by_type["10"][0]
assert field(nic, "ResourceSubType") == "E1000" and field(nic, "Connection") == "NAT"
mac = field(nic, "Address")
vf = open(f"{d}/Vagrantfile").read()
m = re.search(r'config\.vm\.base_mac = "([0-9A-F]{12})"', vf)
assert m and m.group(1) == mac, (mac, m and m.group(1))
assert 'config.ssh.username = "golab"' in vf
assert json.load(open(f"{d}/metadata.json")) == {"provider": "virtualbox"}
cpus = int(field(by_type["3"][0], "VirtualQuantity")); mem = int(field(by_type["4"][0], "VirtualQuantity"))
print(f"check-boot-box: box.ovf: {virtual} bytes, {cpus} CPUs, {mem} MB, SATA AHCI, NAT e1000 {mac}, Debian_64", file=sys.stderr)
PY
  hw="SeaBIOS, AHCI, e1000"
  qemu=(qemu-system-x86_64 -machine pc -accel tcg -m 2048 -smp 2
    -drive "file=$d/box-disk1.vmdk,format=vmdk,if=none,id=d0,snapshot=on"
    -device "ahci,id=ahci" -device "ide-hd,drive=d0,bus=ahci.0"
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" -device "e1000,netdev=n0")
  disk_driver=/sys/bus/pci/drivers/ahci
fi

# Real Vagrant takes the box, under the provider its metadata names (box add needs no
# VirtualBox), in a Vagrant home of this check's own.
command -v vagrant >/dev/null || { echo "check-boot-box: vagrant is not installed (apt-get install vagrant: scripts/install-deps.sh)" >&2; exit 1; }
{
  VAGRANT_HOME=$d/vagrant.d vagrant box add --name golab-check-box "$box" >"$d/box-add.txt" 2>&1 ||
    { echo "check-boot-box: vagrant box add refused the box:" >&2; cat "$d/box-add.txt" >&2; exit 1; }
  VAGRANT_HOME=$d/vagrant.d vagrant box list --machine-readable | grep -q ",box-provider,$kind" ||
    { echo "check-boot-box: vagrant does not list the box under $kind" >&2; exit 1; }
  rm -rf "$d/vagrant.d"
  say "vagrant box add: listed under $kind"
}

# Vagrant's insecure private key: the one the box's authorized_keys answers to.
key=""
for k in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant /usr/share/vagrant/keys/vagrant \
  /usr/lib/ruby/vendor_ruby/vagrant/keys/vagrant "${VAGRANT_INSECURE_KEY:-}"; do
  [ -n "$k" ] && [ -f "$k" ] && key=$k
done
[ -n "$key" ] || { echo "check-boot-box: Vagrant's insecure private key is not installed (apt-get install vagrant, or VAGRANT_INSECURE_KEY)" >&2; exit 1; }
install -m 600 "$key" "$d/key"
say "booting the box's disk under QEMU ($hw; ssh on 127.0.0.1:$port)"
"${qemu[@]}" -display none -serial "file:$d/console.log" -daemonize -pidfile "$d/qemu.pid"
ssh_=(ssh -i "$d/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
  -o ConnectTimeout=10 -o BatchMode=yes -p "$port" golab@127.0.0.1)
up=""
for _ in $(seq 1 90); do
  if timeout 30 "${ssh_[@]}" true 2>/dev/null; then up=1; break; fi
  sleep 5
done
if [ -z "$up" ]; then
  echo "check-boot-box: no ssh login in 450 s; the console's end:" >&2
  tail -30 "$d/console.log" >&2
  exit 1
fi
say "ssh answers"
grep -q "root=UUID=" "$d/console.log" || { echo "check-boot-box: the kernel was not booted by the disk's GRUB (no root=UUID on the console)" >&2; exit 1; }
"${ssh_[@]}" "set -e; findmnt -n -o SOURCE /; ls $disk_driver | grep -Eq '^(virtio[0-9]|0000:)'; ip -4 -o addr show | grep -v ' lo '; sudo -n true; echo sudo ok"
if [ -n "$manifest" ]; then
  got=$("${ssh_[@]}" "bash -lc 'go version; dlv version | sed -n \"s/^Version: //p\"; gdb --version | head -n 1; readelf --version | head -n 1'")
  want=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["tools"]; print("\n".join([t["go"], t["dlv"], t["gdb"], t["readelf"]]))' "$manifest")
  if [ "$got" != "$want" ]; then
    echo "check-boot-box: the tools answer"; echo "$got"; echo "the manifest says"; echo "$want"
    exit 1
  fi >&2
  say "tools as the manifest lists them: $(echo "$got" | tr '\n' ';')"
fi
"${ssh_[@]}" 'sudo systemctl --no-block poweroff' || true
say "ok"
