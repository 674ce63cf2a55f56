"""Run deploy/compose.yaml's services with podman the way Compose does (test helper).

Debian 12's podman-compose puts every project on a bridge network with private addresses; these
tests keep all traffic on loopback instead: every container joins one network namespace the test
made (`ip netns add`), like the containers of a pod, and the service names resolve to 127.0.0.1
(`--add-host`), so `postgres:5432`, `gateway:3000` in the compose file work unchanged. The smoke
client runs in the same namespace (`ip netns exec`).

What is honoured from the compose file: image, command, environment (with `${VAR}`,
`${VAR:-default}` and `${VAR:?message}` interpolation), named volumes, read_only, tmpfs, cap_drop,
security_opt, restart, healthcheck (run by this helper with `podman exec`, as Compose does, since
podman's own timers need systemd), and depends_on with `service_started` / `service_healthy`
(start order, each dependency waited for). `ports` are not published (nothing leaves the
namespace) and `build` is done beforehand by scripts/images.sh under the same image names.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:\?|:-)([^}]*))?\}")


class ComposeError(Exception):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):

        def one(m: re.Match[str]) -> str:
            name, op, arg = m.group(1), m.group(2), m.group(3) or ""
            got = env.get(name, "")
            if op == ":?" and not got:
                raise ComposeError(f"{name}: {arg}")
            if op == ":-" and not got:
                return arg
            return got

        return _VAR.sub(one, value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def _seconds(text: Any, default: float) -> float:
    if text is None:
        return default
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", str(text))
    if not m:
        raise ComposeError(f"duration {text!r}")
    n = float(m.group(1))
    return {"ms": n / 1000, "m": n * 60}.get(m.group(2) or "s", n)


@dataclass
class Project:
    compose_file: Path
    env: dict[str, str]
    name: str
    netns: str
    podman_env: dict[str, str]
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        raw = yaml.safe_load(self.compose_file.read_text())
        self.spec = interpolate(raw, self.env)
        self.services = self.spec["services"]

    # --- podman -------------------------------------------------------------------------------

    def podman(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        r = subprocess.run(
            ["podman", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.podman_env,
            check=False,
        )
        if check and r.returncode != 0:
            raise ComposeError(f"podman {' '.join(args[:3])}: {r.stderr.strip()[-800:]}")
        return r.stdout

    def container(self, service: str) -> str:
        return f"{self.name}-{service}"

    def order(self) -> list[str]:
        done: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in done:
                return
            if name in path:
                raise ComposeError(f"depends_on cycle through {name}")
            for dep in self.depends_on(name):
                visit(dep, (*path, name))
            done.append(name)

        for name in self.services:
            visit(name, ())
        return done

    def depends_on(self, service: str) -> dict[str, str]:
        deps = self.services[service].get("depends_on") or {}
        if isinstance(deps, list):
            return {d: "service_started" for d in deps}
        return {d: (v or {}).get("condition", "service_started") for d, v in deps.items()}

    def run_args(self, service: str) -> list[str]:
        svc = self.services[service]
        args = [
            "run",
            "-d",
            "--name",
            self.container(service),
            "--network",
            f"ns:/run/netns/{self.netns}",
            "--no-healthcheck",
            "--pull=never",
        ]
        for other in self.services:
            args += ["--add-host", f"{other}:127.0.0.1"]
        if svc.get("restart"):
            args += ["--restart", svc["restart"]]
        if svc.get("read_only"):
            args.append("--read-only")
        for t in svc.get("tmpfs") or []:
            args += ["--tmpfs", t]
        for cap in svc.get("cap_drop") or []:
            args += ["--cap-drop", cap]
        for opt in svc.get("security_opt") or []:
            args += ["--security-opt", opt]
        env = svc.get("environment") or {}
        items = env.items() if isinstance(env, dict) else (e.split("=", 1) for e in env)
        for k, v in items:
            args += ["-e", f"{k}={v}"]
        for vol in svc.get("volumes") or []:
            src, _, dst = vol.partition(":")
            if src in (self.spec.get("volumes") or {}):
                src = f"{self.name}-{src}"
            args += ["-v", f"{src}:{dst}"]
        args.append(svc["image"])
        command = svc.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        return args + [str(c) for c in command or []]

    # --- health -------------------------------------------------------------------------------

    def healthcheck(self, service: str) -> list[str] | None:
        test = (self.services[service].get("healthcheck") or {}).get("test")
        if test is None:
            return None
        if isinstance(test, str):
            return ["sh", "-c", test]
        if test[0] == "CMD":
            return list(test[1:])
        if test[0] == "CMD-SHELL":
            return ["sh", "-c", test[1]]
        raise ComposeError(f"{service}: healthcheck {test[0]} not supported")

    def image_healthcheck(self, service: str) -> list[str] | None:
        """The HEALTHCHECK baked into the service's image (docker-format config)."""
        [info] = json.loads(self.podman("image", "inspect", self.services[service]["image"]))
        check = info.get("Healthcheck")
        if not check:
            return None
        test = check["Test"]
        return list(test[1:]) if test[0] == "CMD" else ["sh", "-c", test[1]]

    def exec_ok(self, service: str, cmd: list[str], timeout: float = 10) -> bool:
        r = subprocess.run(
            ["podman", "exec", self.container(service), *cmd],
            capture_output=True,
            text=True,
            timeout=timeout + 5,
            env=self.podman_env,
            check=False,
        )
        return r.returncode == 0

    def state(self, service: str) -> dict[str, Any]:
        fmt = "{{.State.Status}}|{{.State.ExitCode}}|{{.RestartCount}}|{{.State.StartedAt}}"
        status, code, restarts, started = (
            self.podman("inspect", "--format", fmt, self.container(service)).strip().split("|", 3)
        )
        return {
            "status": status,
            "exit_code": int(code),
            "restarts": int(restarts),
            "started_at": started,
        }

    def wait_healthy(self, service: str, timeout: float = 180) -> float:
        """Seconds until the compose healthcheck passes; raises with the logs if it never does."""
        cmd = self.healthcheck(service)
        hc = self.services[service].get("healthcheck") or {}
        interval = min(1.0, _seconds(hc.get("interval"), 1.0))
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            st = self.state(service)
            if st["status"] == "running" and (cmd is None or self.exec_ok(service, cmd)):
                return time.monotonic() - start
            time.sleep(interval)
        raise ComposeError(
            f"{service} not healthy after {timeout:.0f} s: {self.state(service)}\n"
            + self.logs(service)[-3000:]
        )

    def logs(self, service: str) -> str:
        r = subprocess.run(
            ["podman", "logs", self.container(service)],
            capture_output=True,
            text=True,
            timeout=30,
            env=self.podman_env,
            check=False,
        )
        return r.stdout + r.stderr

    # --- lifecycle ----------------------------------------------------------------------------

    def up(self, timeout: float = 180) -> dict[str, float]:
        """Start every service in dependency order; returns seconds waited per dependency."""
        waited: dict[str, float] = {}
        for vol in self.spec.get("volumes") or {}:
            self.podman("volume", "create", f"{self.name}-{vol}")
            self.volumes.append(f"{self.name}-{vol}")
        for service in self.order():
            for dep, condition in self.depends_on(service).items():
                if condition == "service_healthy":
                    waited[dep] = self.wait_healthy(dep, timeout)
                elif condition != "service_started":
                    raise ComposeError(f"{service}: depends_on condition {condition}")
            self.podman(*self.run_args(service))
            self.started.append(service)
        return waited

    def down(self) -> None:
        for service in reversed(self.started):
            self.podman("rm", "-f", "-t", "5", self.container(service), check=False)
        for vol in self.volumes:
            self.podman("volume", "rm", "-f", vol, check=False)
        self.started.clear()
        self.volumes.clear()


def podman_env(conf: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = conf
    return env
