fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Run as /sbin/mount.fuse.kmsfs (a symlink to this binary): mount(8)'s
    // helper, translating its arguments into `kmsfs mount`.
    if let Some((argv0, rest)) = args.split_first()
        && kmsfs::cli::mount_helper::is_helper(argv0)
    {
        return kmsfs::cli::mount_helper::main(argv0, rest);
    }
    kmsfs::cli::main()
}
