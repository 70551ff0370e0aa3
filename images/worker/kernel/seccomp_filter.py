"""The kernel sandbox's seccomp filter, generated with libseccomp (Debian's python3-seccomp).

The worker runs this once at start-up and hands the BPF program to every kernel's bwrap with
`--seccomp FD`; bwrap loads it just before it execs Python, so agent code and every process it
starts run under it, and a filter can only be added to, never removed.

Default allow, with a deny list of what agent Python never needs: debugging other processes
(ptrace clears the sandbox init's parent-death signal), namespaces and mounts (a nested user
namespace hands out capabilities, e.g. a tmpfs no limit sees, nf_tables), large bug-prone kernel
interfaces (io_uring, bpf, perf events, userfaultfd, keyrings), memory the per-process limits do
not see (memfd), and the machine (modules, kexec, clocks, swap). Socket families other than
AF_UNIX, AF_INET, AF_INET6 and netlink's NETLINK_ROUTE (glibc's getaddrinfo uses it) are refused.
Syscalls of other ABIs (x32, i386 through int 0x80) kill the process: only the native
architecture is in the filter.

What it does not do: it is not an allow-list, so a bug in an allowed syscall (read, mmap, futex,
...) is still reachable; it is one layer among the namespaces, rlimits and cgroups.

  python3 seccomp_filter.py > filter.bpf   the BPF program for this machine's architecture
  python3 seccomp_filter.py --list         the rules as JSON (tests, docs)
"""

import errno
import json
import sys

EPERM = errno.EPERM

# (syscall, errno): the whole call is refused.
DENY = [
    # Other processes' memory and state.
    ("ptrace", EPERM),
    ("process_vm_readv", EPERM),
    ("process_vm_writev", EPERM),
    ("process_madvise", EPERM),
    ("pidfd_getfd", EPERM),
    ("kcmp", EPERM),
    # Namespaces and mounts (bwrap has set all of them up before the filter is loaded).
    ("unshare", EPERM),
    ("setns", EPERM),
    ("mount", EPERM),
    ("umount2", EPERM),
    ("pivot_root", EPERM),
    ("chroot", EPERM),
    ("mount_setattr", EPERM),
    ("move_mount", EPERM),
    ("open_tree", EPERM),
    ("fsopen", EPERM),
    ("fsconfig", EPERM),
    ("fsmount", EPERM),
    ("fspick", EPERM),
    # Large kernel interfaces with a history of privilege escalations.
    ("io_uring_setup", EPERM),
    ("io_uring_enter", EPERM),
    ("io_uring_register", EPERM),
    ("bpf", EPERM),
    ("perf_event_open", EPERM),
    ("userfaultfd", EPERM),
    ("keyctl", EPERM),
    ("add_key", EPERM),
    ("request_key", EPERM),
    ("fanotify_init", EPERM),
    ("name_to_handle_at", EPERM),
    ("open_by_handle_at", EPERM),
    ("lookup_dcookie", EPERM),
    # Memory that RLIMIT_AS and the tmpfs caps do not see, or other processes' pages.
    ("memfd_create", EPERM),
    ("memfd_secret", EPERM),
    ("move_pages", EPERM),
    ("migrate_pages", EPERM),
    # The machine: kernel images and modules, clocks, swap, accounting, the kernel log, I/O ports.
    ("kexec_load", EPERM),
    ("kexec_file_load", EPERM),
    ("reboot", EPERM),
    ("init_module", EPERM),
    ("finit_module", EPERM),
    ("delete_module", EPERM),
    ("clock_settime", EPERM),
    ("clock_adjtime", EPERM),
    ("settimeofday", EPERM),
    ("adjtimex", EPERM),
    ("swapon", EPERM),
    ("swapoff", EPERM),
    ("acct", EPERM),
    ("quotactl", EPERM),
    ("quotactl_fd", EPERM),
    ("syslog", EPERM),
    ("vhangup", EPERM),
    ("iopl", EPERM),
    ("ioperm", EPERM),
    ("uselib", EPERM),
]

# clone3 passes its flags in memory a filter cannot read: ENOSYS makes glibc fall back to clone,
# whose flags it can.
CLONE3_ERRNO = errno.ENOSYS
CLONE_NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
    "CLONE_NEWTIME": 0x00000080,
}

AF_NETLINK = 16
NETLINK_ROUTE = 0
ALLOWED_FAMILIES = {1, 2, 10, AF_NETLINK}  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK (route only)
MAX_FAMILY = 64  # above every family Linux knows (AF_MAX is 46 in 6.x)


def rules():
    """Every rule as data: (syscall, errno, [(arg index, op, value, mask or None)], why)."""
    out = [(name, err, [], "denied") for name, err in DENY]
    out.append(("clone3", CLONE3_ERRNO, [], "flags unreadable by a filter; glibc falls back to clone"))
    for flag, bit in CLONE_NAMESPACE_FLAGS.items():
        out.append(("clone", EPERM, [(0, "MASKED_EQ", bit, bit)], flag))
    for fam in range(MAX_FAMILY):
        if fam not in ALLOWED_FAMILIES:
            out.append(("socket", errno.EAFNOSUPPORT, [(0, "EQ", fam, None)], "address family %d" % fam))
    out.append(("socket", errno.EAFNOSUPPORT, [(0, "GE", MAX_FAMILY, None)], "unknown address family"))
    out.append(
        (
            "socket",
            errno.EPROTONOSUPPORT,
            [(0, "EQ", AF_NETLINK, None), (2, "NE", NETLINK_ROUTE, None)],
            "netlink other than NETLINK_ROUTE (nf_tables, audit, xfrm, ...)",
        )
    )
    return out


def build():
    import seccomp  # python3-seccomp; imported here so --list works without it

    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    # A binary tree instead of a linear chain: every syscall the kernel makes pays for the filter.
    f.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    for name, err, conds, _why in rules():
        args = []
        for index, op, value, mask in conds:
            if op == "MASKED_EQ":
                args.append(seccomp.Arg(index, seccomp.MASKED_EQ, mask, value))
            else:
                args.append(seccomp.Arg(index, getattr(seccomp, op), value))
        # Names this architecture lacks (iopl on arm64, ...) resolve to pseudo numbers that
        # libseccomp accepts and never matches.
        f.add_rule(seccomp.ERRNO(err), name, *args)
    return f


def listing():
    try:
        import seccomp

        nr = lambda name: seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)  # noqa: E731
    except ImportError:
        nr = lambda name: None  # noqa: E731
    return [
        {
            "syscall": name,
            "nr": nr(name),
            "errno": errno.errorcode[err],
            "when": [{"arg": i, "op": op, "value": v} for i, op, v, _m in conds],
            "why": why,
        }
        for name, err, conds, why in rules()
    ]


def main():
    if sys.argv[1:] == ["--list"]:
        json.dump(listing(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    if sys.argv[1:]:
        sys.exit("usage: seccomp_filter.py [--list]")
    build().export_bpf(sys.stdout.buffer)


if __name__ == "__main__":
    main()
