"""grpc_apps.py — builds the e2e apps of tests/e2e/apps/grpc-go (Go, Debian toolchain and
golang-google-grpc-dev, offline) and apps/grpc-node (npm ci from the lock file), cached."""

import os
import shutil
import subprocess

from lib import check_eq

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.path.join(REPO, os.environ.get("BUILD", "build"), "e2e-apps")
GO_VARIANTS = {  # name: go build flags
    "default": [],
    "stripped": ["-ldflags=-s -w"],
    "pie": ["-buildmode=pie", "-ldflags=-s -w"],
}


def go_binary(variant="default"):
    """Builds apps/grpc-go with the Debian toolchain and golang-google-grpc-dev, offline (GOPATH
    mode against /usr/share/gocode), with the flags of GO_VARIANTS[variant]; None when either is
    missing."""
    go = shutil.which("go")
    if not go or not os.path.isdir("/usr/share/gocode/src/google.golang.org/grpc"):
        return None
    src = os.path.join(HERE, "apps", "grpc-go", "main.go")
    out = os.path.join(BUILD_DIR, "grpc-go", "grpc-go" + ("" if variant == "default" else
                                                          "-" + variant))
    if os.path.exists(out) and os.path.getmtime(out) > os.path.getmtime(src):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update({"GOPATH": "/usr/share/gocode", "GO111MODULE": "off", "GOPROXY": "off",
                "GOFLAGS": "", "CGO_ENABLED": "0",
                "GOCACHE": os.path.join(BUILD_DIR, "grpc-go", "cache")})
    r = subprocess.run([go, "build"] + GO_VARIANTS[variant] + ["-o", out, src], env=env,
                       capture_output=True, text=True, timeout=300)
    check_eq(r.returncode, 0, "go build apps/grpc-go (%s)" % r.stderr[-500:])
    return out


def node_app():
    """apps/grpc-node with its node_modules (npm install from the lock file, cached)."""
    if not shutil.which("node") or not shutil.which("npm"):
        return None
    src = os.path.join(HERE, "apps", "grpc-node")
    stamp = os.path.join(src, "node_modules", ".package-lock.json")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(
            os.path.join(src, "package-lock.json")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--no-update-notifier"],
                           cwd=src, capture_output=True, text=True, timeout=300)
        check_eq(r.returncode, 0, "npm ci apps/grpc-node (%s)" % r.stderr[-500:])
    return os.path.join(src, "grpc_app.js")
