"""Checks docker-compose.yml without a Docker engine: it parses, merge keys
resolve, every dependency, volume and config file exists, and the NATS URLs
and cluster routes name real services."""
import pathlib
import re
import sys

import yaml

root = pathlib.Path(__file__).resolve().parent.parent
doc = yaml.safe_load((root / "docker-compose.yml").read_text())
services = doc["services"]
volumes = set((doc.get("volumes") or {}).keys())
problems = []

for name, svc in services.items():
    if "image" not in svc and "build" not in svc:
        problems.append(f"{name}: neither image nor build")
    if "command" in svc and not isinstance(svc["command"], list):
        problems.append(f"{name}: command should be a list")
    for dep in (svc.get("depends_on") or {}):
        if dep not in services:
            problems.append(f"{name}: depends on unknown service {dep}")
    for mount in svc.get("volumes") or []:
        source = mount.split(":")[0]
        if source.startswith("."):
            if not (root / source).exists():
                problems.append(f"{name}: mounts missing file {source}")
        elif source not in volumes:
            problems.append(f"{name}: mounts undeclared volume {source}")
    url = (svc.get("environment") or {}).get("ORDERSTREAM_NATS_URL", "")
    for host in re.findall(r"nats://([^:,/]+)", url):
        if host not in services:
            problems.append(f"{name}: NATS URL names unknown service {host}")
    role = (svc.get("command") or [None])[0]
    if svc.get("image", "").startswith("orderstream") and role not in {
        "up", "ingest", "processor", "analytics", "dashboard", "seed", "loadgen", "replay", "sql",
    }:
        problems.append(f"{name}: unknown orderstream role {role}")

conf = (root / "deploy/nats-cluster.conf").read_text()
for host in re.findall(r"nats-route://([^:]+):", conf):
    if host not in services:
        problems.append(f"nats-cluster.conf routes to unknown service {host}")

if problems:
    print("docker-compose.yml:", *problems, sep="\n  ")
    sys.exit(1)
print(f"docker-compose.yml: {len(services)} services OK")
