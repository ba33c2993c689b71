//! `kmsfs cat` and `kmsfs fsck`: the core's offline tools.

use super::{CatArgs, FsckArgs};
use std::process::ExitCode;

pub fn cat(_a: &CatArgs) -> Result<ExitCode, String> {
    Err("cat is not available in this build".into())
}

pub fn fsck(_a: &FsckArgs) -> Result<ExitCode, String> {
    Err("fsck is not available in this build".into())
}
