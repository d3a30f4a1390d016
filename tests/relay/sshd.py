"""A throwaway OpenSSH server on loopback, for the tunnel tests.

Keys, config, pid file and authorized_keys all live in the test's tmp dir; the server runs in
the foreground (-D) and logs to stderr (-e). Runs as whoever runs the tests (root here; then
sshd needs its privilege separation dir, which the test creates if it is missing).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.relay.support import free_port, wait_for

SSHD = "/usr/sbin/sshd"


@dataclass
class Sshd:
    root: Path
    port: int
    client_key: Path
    user: str
    proc: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def ssh_command(
        self, *args: str, forward: str | None = None, tty: bool = False, no_command: bool = False
    ) -> list[str]:
        cmd = [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "LogLevel=ERROR",
            # The relay's address and secret travel in the environment, never in argv.
            "-o",
            "SendEnv=ANNOTATOR_*",
            "-i",
            str(self.client_key),
            "-p",
            str(self.port),
        ]
        if forward:
            cmd += ["-R", forward]
        if tty:
            cmd.append("-tt")
        if no_command:
            cmd.append("-N")
        return [*cmd, f"{self.user}@127.0.0.1", *args]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_sshd(root: Path) -> Sshd:
    if not (Path(SSHD).exists() and shutil.which("ssh") and shutil.which("ssh-keygen")):
        pytest.skip(reason="OpenSSH server/client not installed (apt-get install openssh-server)")
    root.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True
        )
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {root / 'host_key'}\n"
        f"PidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
        "StrictModes no\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "UsePAM no\n"
        "AllowTcpForwarding remote\n"
        "GatewayPorts no\n"
        "X11Forwarding no\n"
        "PrintMotd no\n"
        "AcceptEnv ANNOTATOR_* TERM\n"
        "LogLevel VERBOSE\n"
    )
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-p", str(port), "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    import getpass

    server = Sshd(root, port, root / "client_key", getpass.getuser(), proc)

    def pump() -> None:
        assert proc.stderr is not None
        for line in iter(proc.stderr.readline, ""):
            server.log.append(line)

    threading.Thread(target=pump, daemon=True).start()
    if not wait_for(lambda: any("listening on" in line.lower() for line in server.log), 10):
        server.stop()
        raise AssertionError("sshd did not start:\n" + "".join(server.log))
    return server
