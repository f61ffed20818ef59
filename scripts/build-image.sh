#!/usr/bin/env bash
# build-image.sh — the periscope container image without pulling anything: an OCI image layout
# (oci-layout, index.json, blobs) with one layer holding build/periscope, the shared libraries
# ldd finds for it, the CA bundle, and /etc/passwd, /etc/group, /etc/nsswitch.conf; packed as a
# tar that `ctr image import` and `podman load` take.
#   scripts/build-image.sh [OUT.tar] [NAME]
#     OUT.tar  default build/periscope-image.tar
#     NAME     default docker.io/library/periscope:latest
#   ctr -n k8s.io image import build/periscope-image.tar
# Needs: the agent built (make), python3 (for the JSON), tar, gzip, sha256sum.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
out=${1:-$BUILD/periscope-image.tar}
name=${2:-docker.io/library/periscope:latest}
bin=$BUILD/periscope
[ -x "$bin" ] || { echo "build-image: $bin is not built (run make)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{usr/bin,etc/ssl/certs,tmp,proc,sys,dev,run,host}
ln -s usr/bin "$root/bin"
cp "$bin" "$root/usr/bin/periscope"
strip --strip-debug "$root/usr/bin/periscope" 2>/dev/null || true
# the libraries and the loader, at the paths ldd names
ldd "$bin" | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}' | sort -u | while read -r lib; do
	real=$(readlink -f "$lib")
	mkdir -p "$root$(dirname "$lib")"
	cp "$real" "$root$lib"
done
# libcurl resolves names through NSS: the files + dns modules
for lib in /lib/x86_64-linux-gnu/libnss_files.so.2 /lib/x86_64-linux-gnu/libnss_dns.so.2; do
	[ -e "$lib" ] && mkdir -p "$root$(dirname "$lib")" && cp "$(readlink -f "$lib")" "$root$lib"
done
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
echo "root:x:0:0:root:/:/usr/bin/periscope" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
echo "hosts: files dns" >"$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"

blobs=$work/layout/blobs/sha256
mkdir -p "$blobs"
# a reproducible layer: sorted, owned by root, fixed times
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"
layer=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
mv "$work/layer.tar.gz" "$blobs/$layer"

python3 - "$work/layout" "$layer" "$diff_id" "$name" <<'EOF'
import hashlib, json, os, sys
layout, layer, diff_id, name = sys.argv[1:]
blobs = os.path.join(layout, "blobs", "sha256")

def put(obj):
    data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return digest, len(data)

config = {"architecture": "amd64", "os": "linux",
          "config": {"Entrypoint": ["/usr/bin/periscope"], "WorkingDir": "/",
                     "Env": ["PATH=/usr/bin"]},
          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]},
          "history": [{"created_by": "scripts/build-image.sh"}]}
cdig, clen = put(config)
lsize = os.path.getsize(os.path.join(blobs, layer))
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": "sha256:" + cdig, "size": clen},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": "sha256:" + layer, "size": lsize}]}
mdig, mlen = put(manifest)
tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
index = {"schemaVersion": 2, "manifests": [{
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + mdig, "size": mlen,
    "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}}]}
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump(index, f)
with open(os.path.join(layout, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
EOF
mkdir -p "$(dirname "$out")"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/layout" -cf "$out" .
echo "build-image: $out ($name, layer $(du -h "$blobs/$layer" | cut -f1)): ctr -n k8s.io image import $out"
