// What vessel-init does for a machine (Setup.machine) beyond a container's
// root: the root is the machine's own disk, so its /etc is written to (not
// covered by bind mounts), the user is made to exist, the filesystem grows
// to the disk, and PID 1 becomes the image's own init.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "guest/system.h"
#include "protocol/protocol.h"

namespace vessel::guest {

/// Grows the ext4 filesystem mounted at `root` to the size of `device`
/// (online, EXT4_IOC_RESIZE_FS): the host only ever grows the disk file.
Status grow_filesystem(const std::string& root, const std::string& device);

/// Writes /etc/hostname, /etc/hosts and /etc/resolv.conf on the machine's
/// disk (each replaced atomically; one that is a symlink, such as
/// systemd-resolved's resolv.conf, is left alone), then makes `setup.user`
/// exist (make_user_files) and checks that `setup.init` is there.
Status prepare_machine_root(const protocol::Setup& setup, const std::string& root);

/// The text of /etc/passwd, /etc/group and /etc/shadow (empty if the root
/// has none) with `user` in them: its passwd entry replaced or added (before
/// another entry with its uid, so lookups by uid find it), a group for its
/// gid unless one exists, a locked shadow entry. `shell` is what the entry
/// names. Pure text in, text out: tested on the host.
struct UserFiles {
  std::string passwd, group, shadow;
};
UserFiles make_user_files(const UserFiles& in, const protocol::MachineUser& user,
                          const std::string& shell);

/// The machine's PID 1 from now on: enters the machine's mount namespace
/// `mount_ns` and executes `init` there, with every signal unblocked. Only
/// returns on failure (the caller powers off).
Status exec_machine_init(int mount_ns, const std::string& init);

}  // namespace vessel::guest
