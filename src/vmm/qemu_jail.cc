#include "vmm/qemu_jail.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <set>

#include "base/strings.h"
#include "sys/fs.h"
#include "sys/process.h"
#include "vmm/qemu_args.h"

namespace vessel::vmm {
namespace {

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return p;
  return buf;
}

std::string dir_name(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == 0 ? "/" : slash == std::string::npos ? "." : p.substr(0, slash);
}

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::string qemu_data_dir(const std::string& qemu_binary) {
  std::string data = dir_name(dir_name(real_path(qemu_binary))) + "/share/qemu";
  return is_dir(data) ? real_path(data) : "/usr/share/qemu";
}

std::string qemu_sibling(const std::string& qemu_binary, const std::string& name) {
  return dir_name(real_path(qemu_binary)) + "/" + name;
}

std::optional<std::string> elf_interpreter(std::string_view head) {
  Elf64_Ehdr eh;
  if (head.size() < sizeof eh) return std::nullopt;
  std::memcpy(&eh, head.data(), sizeof eh);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_phentsize != sizeof(Elf64_Phdr))
    return std::nullopt;
  for (uint32_t i = 0; i < eh.e_phnum; ++i) {
    uint64_t off = eh.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr);
    if (off < eh.e_phoff || off > head.size() || head.size() - off < sizeof(Elf64_Phdr))
      return std::nullopt;
    Elf64_Phdr ph;
    std::memcpy(&ph, head.data() + off, sizeof ph);
    if (ph.p_type != PT_INTERP) continue;
    if (ph.p_offset > head.size() || ph.p_filesz == 0 || ph.p_filesz > 4096 ||
        head.size() - ph.p_offset < ph.p_filesz)
      return std::nullopt;
    std::string interp(head.substr(ph.p_offset, ph.p_filesz));
    if (auto nul = interp.find('\0'); nul != std::string::npos) interp.resize(nul);
    if (interp.empty() || interp[0] != '/') return std::nullopt;
    return interp;
  }
  return std::nullopt;
}

Result<std::vector<std::string>> parse_ld_list(std::string_view text) {
  std::vector<std::string> libs;
  for (std::string_view line : split(text, '\n')) {
    line = trim(line);
    if (line.empty()) continue;
    // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)", the loader
    // as "/lib64/ld-linux-x86-64.so.2 (0x...)", the vDSO without a path.
    std::string_view path;
    if (auto arrow = line.find(" => "); arrow != std::string_view::npos) {
      path = line.substr(arrow + 4);
      if (starts_with(path, "not found"))
        return Error(ErrorCode::kNotFound,
                     "library '" + std::string(line.substr(0, arrow)) + "' not found");
    } else {
      path = line;
    }
    if (auto paren = path.find(" ("); paren != std::string_view::npos) path = path.substr(0, paren);
    path = trim(path);
    if (path.empty() || path[0] != '/') continue;
    libs.emplace_back(path);
  }
  return libs;
}

Result<QemuFiles> find_qemu_files(const std::string& qemu_binary) {
  QemuFiles f;
  f.binary = real_path(qemu_binary);
  std::string head(64 << 10, '\0');
  {
    VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(f.binary, O_RDONLY | O_CLOEXEC));
    ssize_t n = ::pread(fd.get(), head.data(), head.size(), 0);
    if (n < 0) return Error::from_errno(errno, "read '" + f.binary + "'");
    head.resize(static_cast<size_t>(n));
  }
  std::optional<std::string> loader = elf_interpreter(head);
  if (!loader)
    return Error(ErrorCode::kFailedPrecondition,
                 "'" + f.binary +
                     "' is not a dynamically linked ELF executable, so it cannot be confined "
                     "(VESSEL_CONFINE=0 runs it unconfined)");

  // Modules (Debian builds TCG itself as one) live in the build's module
  // directory; QEMU_MODULE_DIR points a jailed QEMU at it.
  std::string prefix = dir_name(dir_name(f.binary));
  for (const char* d :
       {"/lib/x86_64-linux-gnu/qemu", "/lib/aarch64-linux-gnu/qemu", "/lib64/qemu", "/lib/qemu"}) {
    std::string dir = prefix + d;
    auto names = sys::list_dir(dir);
    if (!names.ok()) continue;
    bool modules = false;
    for (const auto& n : *names)
      modules = modules || (starts_with(n, "accel-") && std::string_view(n).ends_with(".so"));
    if (modules) {
      f.module_dir = real_path(dir);
      break;
    }
  }
  f.data_dir = qemu_data_dir(f.binary);

  // The libraries of the binary and of its accelerator modules: what the
  // loader itself resolves (`ld.so --list`, which is what ldd runs).
  std::vector<std::string> objects = {f.binary};
  if (!f.module_dir.empty()) {
    for (const char* m : {"accel-tcg-x86_64.so", "accel-tcg-aarch64.so"}) {
      std::string path = f.module_dir + "/" + m;
      if (::access(path.c_str(), R_OK) == 0) objects.push_back(path);
    }
  }
  std::set<std::string> seen;
  for (const auto& o : objects) {
    auto out = sys::output_of({*loader, "--list", o});
    if (!out.ok()) return out.error().wrap("list the libraries of '" + o + "'");
    VESSEL_ASSIGN_OR_RETURN(auto libs, parse_ld_list(*out));
    for (auto& l : libs)
      if (seen.insert(l).second) f.libraries.push_back(std::move(l));
  }
  if (seen.insert(*loader).second) f.libraries.push_back(*loader);
  return f;
}

Result<QemuFiles> cached_qemu_files(const std::string& qemu_binary, const std::string& cache_dir) {
  if (cache_dir.empty()) return find_qemu_files(qemu_binary);
  std::string binary = real_path(qemu_binary);
  struct stat st;
  if (::stat(binary.c_str(), &st) != 0) return Error::from_errno(errno, "'" + binary + "'");
  std::string key = binary + " " + std::to_string(st.st_size) + " " +
                    std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
                    " " + std::to_string(st.st_ino);
  std::string file = cache_dir + "/qemu-files-" + std::to_string(std::hash<std::string>{}(key));
  // The file: the key, then one "kind<TAB>path" line per entry. Anything
  // else (another key, a torn write) is found again and rewritten.
  if (auto text = sys::read_file(file, 1 << 20); text.ok()) {
    auto lines = split(*text, '\n');
    QemuFiles f;
    bool whole = !lines.empty() && lines[0] == key;
    for (size_t i = 1; whole && i < lines.size(); ++i) {
      std::string_view line = lines[i];  // a view of the line, not of a temporary
      if (line.empty()) continue;
      auto tab = line.find('\t');
      std::string_view kind = line.substr(0, tab);
      std::string path(tab == std::string_view::npos ? "" : line.substr(tab + 1));
      if (path.empty() || path[0] != '/')
        whole = false;
      else if (kind == "binary")
        f.binary = path;
      else if (kind == "data")
        f.data_dir = path;
      else if (kind == "module")
        f.module_dir = path;
      else if (kind == "lib")
        f.libraries.push_back(path);
      else
        whole = false;
    }
    if (whole && f.binary == binary && !f.data_dir.empty() && !f.libraries.empty()) return f;
  }
  VESSEL_ASSIGN_OR_RETURN(QemuFiles f, find_qemu_files(binary));
  std::string text = key + "\nbinary\t" + f.binary + "\ndata\t" + f.data_dir + "\n";
  if (!f.module_dir.empty()) text += "module\t" + f.module_dir + "\n";
  for (const auto& l : f.libraries)
    text += "lib\t" + l + "\n";
  // A cache: failing to keep it is no error. The directory may not exist
  // yet (a state root that has only run --rootfs containers).
  (void)sys::make_dirs(cache_dir, 0700);
  (void)sys::write_file_atomic(file, text, 0600);
  return f;
}

Result<sys::Jail> qemu_jail(const QemuFiles& files, const VmConfig& c,
                            const std::string& mountpoint) {
  sys::Jail j;
  j.mountpoint = mountpoint;
  j.uid = c.confine.uid;
  j.gid = c.confine.gid;
  j.hostname = "vessel-vmm";
  // Each path as the loader asks for it ("/lib/x86_64-linux-gnu/libz.so.1"
  // on a merged-/usr host is /usr/lib/...): the file is bound at its real
  // directory under its asked-for name, and the host's top-level symlinks
  // (/lib -> usr/lib) are made again in the jail.
  std::set<std::string> targets;
  auto bind = [&](const std::string& source, const std::string& target, bool device = false) {
    if (targets.insert(target).second) j.binds.push_back({source, target, device});
  };
  for (const auto& lib : files.libraries) {
    std::string dir = real_path(dir_name(lib));
    std::string base = lib.substr(lib.rfind('/') + 1);
    bind(real_path(lib), dir + "/" + base);
  }
  for (const char* top : {"/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin"}) {
    char link[PATH_MAX];
    ssize_t n = ::readlink(top, link, sizeof link - 1);
    if (n > 0) j.symlinks.emplace_back(std::string(link, static_cast<size_t>(n)), top);
  }
  bind(files.binary, files.binary);
  if (!files.module_dir.empty()) bind(files.module_dir, files.module_dir);
  bind(files.data_dir, files.data_dir);
  bind(c.kernel, kJailKernel);
  bind(c.initrd, kJailInitrd);
  bind("/dev/null", "/dev/null", true);
  j.groups = c.confine.groups;
  if (!c.shared_dirs.empty()) {
    // Guest RAM that virtiofsd maps too must be a file both can map (a
    // memfd unconfined). A tmpfs with huge pages gives it 2 MiB pages, as
    // QEMU's anonymous RAM has: ~9,000 fewer page faults in a container's
    // start and a faster exit (docs/performance.md, session 11); but not
    // where guest_ram_in_small_pages.
    j.tmpfs.push_back({kJailRamDir, c.memory_bytes + (2u << 20), !guest_ram_in_small_pages(c)});
  }
  if (c.accel == Accel::kKvm) {
    // Its own /dev/kvm node, owned by the jail's uid: hosts differ in the
    // host node's group and mode (root:kvm 0660, 0666, root-only 0600).
    struct stat st;
    if (::stat("/dev/kvm", &st) != 0) return Error::from_errno(errno, "stat /dev/kvm");
    if (!S_ISCHR(st.st_mode))
      return Error(ErrorCode::kInvalidArgument, "/dev/kvm is not a character device");
    j.nodes.push_back({"/dev/kvm", st.st_rdev});
  }
  return j;
}

uid_t confined_id(pid_t owner) {
  return kConfinedIdBase + static_cast<uid_t>(owner);
}

}  // namespace vessel::vmm
