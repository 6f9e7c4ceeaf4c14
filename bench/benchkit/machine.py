"""What the figures were measured on."""

import os
import platform


def describe():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError as exc:
        cpu = f"unknown CPU (/proc/cpuinfo: {exc.strerror})"
    memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": memory_gb,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
