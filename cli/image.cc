// vessel image pull|ls|load|save|tag|rm|inspect|prune|push (and the aliases
// `vessel pull`, `vessel images`).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "base/strings.h"
#include "commands.h"
#include "images/image_store.h"
#include "images/views.h"
#include "runtime/paths.h"
#include "sys/fs.h"

namespace vessel::cli {
namespace {

using images::PullEvent;

std::string human_size(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
  return buf;
}

// Renders pull progress: on a terminal one line per layer, redrawn in place
// with bytes, total and speed; otherwise (plain) a line per state change.
class ProgressView {
 public:
  explicit ProgressView(std::string mode, std::string verb = "downloading")
      : mode_(std::move(mode)), verb_(std::move(verb)) {
    if (mode_ == "auto") mode_ = ::isatty(STDERR_FILENO) ? "tty" : "plain";
  }

  void on_event(const PullEvent& e) {
    if (mode_ == "none") return;
    std::string id = e.digest.short_hex();
    auto now = std::chrono::steady_clock::now();
    switch (e.kind) {
      case PullEvent::Kind::kResolved:
        line("resolved " + e.digest.str());
        return;
      case PullEvent::Kind::kUnpacking:
        finish_block();
        line("unpacking into a snapshot");
        return;
      case PullEvent::Kind::kLayerCached:
        set(id, "already present", e.total);
        break;
      case PullEvent::Kind::kLayerStart:
        starts_[id] = now;
        set(id, verb_, e.total);
        break;
      case PullEvent::Kind::kLayerBytes: {
        double secs = std::chrono::duration<double>(now - starts_[id]).count();
        std::string speed = secs > 0.2 ? "  " + human_size(e.bytes / secs) + "/s" : "";
        state_[id] = verb_ + " " + human_size(static_cast<double>(e.bytes)) + " / " +
                     human_size(static_cast<double>(e.total)) + speed;
        if (mode_ == "tty" && now - last_draw_ > std::chrono::milliseconds(100)) draw();
        return;
      }
      case PullEvent::Kind::kLayerDone:
        set(id, "done", e.total);
        break;
    }
  }

  void finish_block() {
    if (mode_ == "tty" && drawn_ > 0) draw();
    drawn_ = 0;
  }

 private:
  void set(const std::string& id, const std::string& what, int64_t total) {
    if (!state_.count(id)) order_.push_back(id);
    state_[id] = what + (total ? " (" + human_size(static_cast<double>(total)) + ")" : "");
    if (mode_ == "plain")
      line(id + ": " + state_[id]);
    else
      draw();
  }
  void line(const std::string& s) {
    if (mode_ == "none") return;
    std::cerr << s << "\n" << std::flush;
  }
  void draw() {
    std::string out;
    if (drawn_ > 0) out += "\033[" + std::to_string(drawn_) + "A";
    for (const auto& id : order_)
      out += "\r\033[K" + id + ": " + state_[id] + "\n";
    drawn_ = order_.size();
    std::cerr << out << std::flush;
    last_draw_ = std::chrono::steady_clock::now();
  }

  std::string mode_, verb_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> state_;
  std::map<std::string, std::chrono::steady_clock::time_point> starts_;
  std::chrono::steady_clock::time_point last_draw_{};
  size_t drawn_ = 0;
};

}  // namespace

Result<images::PullOptions> pull_options(const PullFlags& f) {
  images::PullOptions o;
  if (f.scheme == "http")
    o.scheme = registry::Scheme::kHttp;
  else if (f.scheme == "https")
    o.scheme = registry::Scheme::kHttps;
  else if (f.scheme == "auto")
    o.scheme = registry::Scheme::kAuto;
  else
    return Error(ErrorCode::kInvalidArgument,
                 "invalid --scheme '" + f.scheme + "' (expected http, https or auto)");
  if (!f.platform.empty()) {
    VESSEL_ASSIGN_OR_RETURN(image::Platform p, image::parse_platform(f.platform));
    o.platform = p;
  }
  o.insecure_tls = !f.tls_verify;
  if (f.max_concurrent_downloads < 1)
    return Error(ErrorCode::kInvalidArgument, "--max-concurrent-downloads must be at least 1");
  o.max_concurrent_downloads = f.max_concurrent_downloads;
  return o;
}

Result<std::optional<images::ImageRecord>> load_embedded(images::ImageStore& store,
                                                         const image::Reference& ref) {
  using Found = std::optional<images::ImageRecord>;
  if (ref.registry != image::kDockerHubRegistry || ref.digest) return Found();
  std::string layout = runtime::embedded_image_layout(ref.repository);
  if (layout.empty()) return Found();
  VESSEL_TRY(store.load_layout(layout, ref.repository));
  return store.find(ref);
}

Result<images::ImageRecord> pull_image(images::ImageStore& store, const image::Reference& ref,
                                       const PullFlags& f) {
  // Embedded images come from the build, not from a registry.
  VESSEL_ASSIGN_OR_RETURN(auto embedded, load_embedded(store, ref));
  if (embedded) return *embedded;
  VESSEL_ASSIGN_OR_RETURN(images::PullOptions o, pull_options(f));
  auto view = std::make_shared<ProgressView>(f.progress);
  o.progress = [view](const PullEvent& e) { view->on_event(e); };
  auto r = store.pull(ref, o);
  view->finish_block();
  return r;
}

void add_pull_flags(CLI::App* cmd, PullFlags& f) {
  cmd->add_option("--platform", f.platform, "Platform os/arch[/variant] (default: the host's)");
  cmd->add_option("--scheme", f.scheme, "Registry scheme: https, http or auto (http for loopback)")
      ->check(CLI::IsMember({"http", "https", "auto"}));
  cmd->add_option("--tls-verify", f.tls_verify, "Verify the registry's TLS certificate")
      ->default_str("true");
  cmd->add_option("--progress", f.progress, "Progress output: auto, plain or none")
      ->check(CLI::IsMember({"auto", "plain", "none"}));
  cmd->add_option("--max-concurrent-downloads", f.max_concurrent_downloads,
                  "Layers downloaded at once (default 3)");
}

namespace {

int pull(const std::string& name, const PullFlags& f, const GlobalOptions& g) {
  auto ref = image::parse_reference(name);
  if (!ref.ok()) {
    print_error("pull: " + ref.error().to_string());
    return kExitFailure;
  }
  auto store = images::ImageStore::open(runtime::resolve_root(g.root));
  if (!store.ok()) {
    print_error("pull: " + store.error().to_string());
    return kExitFailure;
  }
  auto r = pull_image(*store, *ref, f);
  if (!r.ok()) {
    print_error(r.error().to_string());
    return kExitFailure;
  }
  std::cout << "Digest: " << r->manifest.str() << "\n" << ref->familiar() << "\n";
  return kExitOk;
}

// Opens the store and finds a local image by reference, or fails naming it.
Result<std::pair<images::ImageStore, images::ImageRecord>> find_local(const GlobalOptions& g,
                                                                      const std::string& name) {
  VESSEL_ASSIGN_OR_RETURN(image::Reference ref, image::parse_reference(name));
  VESSEL_ASSIGN_OR_RETURN(images::ImageStore store,
                          images::ImageStore::open(runtime::resolve_root(g.root)));
  VESSEL_ASSIGN_OR_RETURN(auto found, store.find(ref));
  if (!found) return Error(ErrorCode::kNotFound, "no such image: '" + ref.familiar() + "'");
  return std::make_pair(std::move(store), std::move(*found));
}

int tag(const std::string& source, const std::string& target, const GlobalOptions& g) {
  auto local = find_local(g, source);
  auto ref = image::parse_reference(target);
  Status s = !local.ok() ? Status(local.error()) : !ref.ok() ? Status(ref.error()) : Status();
  if (s.ok()) s = local->first.tag(local->second, *ref);
  if (!s.ok()) {
    print_error("tag: " + s.error().to_string());
    return kExitFailure;
  }
  return kExitOk;
}

// Manifest digests of the images containers were created from (running or
// not): their snapshots are their root filesystems.
Result<std::set<std::string>> images_in_use(const GlobalOptions& g) {
  VESSEL_ASSIGN_OR_RETURN(auto cs, containers::Containers::open(runtime::resolve_root(g.root)));
  VESSEL_ASSIGN_OR_RETURN(auto all, cs->store().containers());
  std::set<std::string> out;
  for (const auto& c : all)
    if (!c.image_id.empty()) out.insert(c.image_id);
  return out;
}

// rm forgets names; prune reclaims the space. An image a container uses is
// kept unless -f (its snapshot then stays until the container goes).
int remove(const std::vector<std::string>& names, bool force, const GlobalOptions& g) {
  int rc = kExitOk;
  auto in_use = images_in_use(g);
  for (const auto& name : names) {
    auto local = find_local(g, name);
    Status s = local.ok() ? Status() : Status(local.error());
    if (s.ok() && !in_use.ok()) s = in_use.error();
    if (s.ok() && !force && in_use->count(local->second.manifest.str()))
      s = Error(ErrorCode::kFailedPrecondition,
                "image '" + name + "' is used by a container (remove it first, or use -f)");
    if (s.ok()) s = local->first.remove(*image::parse_reference(name));
    if (!s.ok()) {
      print_error("rm: " + s.error().to_string());
      rc = kExitFailure;
      continue;
    }
    std::cout << "Untagged: " << name << "\n";
  }
  return rc;
}

int inspect(const std::string& name, const GlobalOptions& g) {
  auto local = find_local(g, name);
  if (!local.ok()) {
    print_error("inspect: " + local.error().to_string());
    return kExitFailure;
  }
  auto& [store, rec] = *local;
  auto out = images::inspect_view(store, rec);
  if (!out.ok()) {
    print_error("inspect: " + out.error().to_string());
    return kExitFailure;
  }
  std::cout << nlohmann::json::array({*out}).dump(2) << "\n";
  return kExitOk;
}

int prune(const GlobalOptions& g) {
  auto store = images::ImageStore::open(runtime::resolve_root(g.root));
  auto in_use = images_in_use(g);
  if (!in_use.ok()) {
    print_error("prune: " + in_use.error().to_string());
    return kExitFailure;
  }
  auto stats =
      store.ok() ? store->prune(*in_use) : Result<images::ImageStore::PruneStats>(store.error());
  if (!stats.ok()) {
    print_error("prune: " + stats.error().to_string());
    return kExitFailure;
  }
  std::cout << "Deleted " << stats->blobs << " blobs and " << stats->snapshots
            << " snapshots\nTotal reclaimed space: "
            << human_size(static_cast<double>(stats->bytes)) << "\n";
  return kExitOk;
}

int push(const std::string& name, const PullFlags& f, const GlobalOptions& g) {
  auto local = find_local(g, name);
  if (!local.ok()) {
    print_error("push: " + local.error().to_string());
    return kExitFailure;
  }
  auto o = pull_options(f);
  if (!o.ok()) {
    print_error("push: " + o.error().to_string());
    return kExitFailure;
  }
  auto view = std::make_shared<ProgressView>(f.progress, "pushing");
  o->progress = [view](const PullEvent& e) { view->on_event(e); };
  auto s = local->first.push(local->second, *image::parse_reference(name), *o);
  view->finish_block();
  if (!s.ok()) {
    print_error(s.error().to_string());
    return kExitFailure;
  }
  std::cout << "Pushed " << name << "\nDigest: " << local->second.manifest.str() << "\n";
  return kExitOk;
}

// `image load [-i PATH]`: an OCI image layout (a directory, or a tar of
// one) or a `docker save` archive; stdin when no -i.
int load(const std::string& input, const std::string& name, const GlobalOptions& g) {
  std::string shown = input.empty() ? "stdin" : input;
  auto fail = [&](const Error& e) {
    std::string hint = e.code() == ErrorCode::kInvalidArgument && name.empty() &&
                               (e.message().find("no repository") != std::string::npos ||
                                e.message().find("no RepoTags") != std::string::npos)
                           ? " (give one with --name)"
                           : "";
    print_error("load: '" + shown + "': " + e.to_string() + hint);
    return kExitFailure;
  };
  if (input.empty() && ::isatty(STDIN_FILENO)) {
    print_error(
        "load: refusing to read an image archive from a terminal; use -i FILE or "
        "redirect stdin");
    return kExitFailure;
  }
  auto store = images::ImageStore::open(runtime::resolve_root(g.root));
  if (!store.ok()) return fail(store.error());
  Result<std::vector<images::ImageRecord>> loaded = std::vector<images::ImageRecord>{};
  struct stat st;
  if (input.empty()) {
    loaded = store->load_archive(STDIN_FILENO, shown, name);
  } else if (::stat(input.c_str(), &st) != 0) {
    return fail(Error::from_errno(errno, "stat"));
  } else if (S_ISDIR(st.st_mode)) {
    loaded = store->load_dir(input, name);
  } else {
    auto fd = sys::open_fd(input, O_RDONLY);
    if (!fd.ok()) return fail(fd.error());
    loaded = store->load_archive(fd->get(), shown, name);
  }
  if (!loaded.ok()) return fail(loaded.error());
  for (const auto& r : *loaded) {
    auto ref = image::parse_reference(r.name);
    std::cout << "Loaded image: " << (ref.ok() ? ref->familiar() : r.name) << "\n";
  }
  return kExitOk;
}

// `image save [-o FILE] IMAGE...`: an OCI image-layout tar (with a docker
// manifest.json) to FILE, or to stdout, which must not be a terminal.
int save(const std::vector<std::string>& names, const std::string& output, const GlobalOptions& g) {
  if (output.empty() && ::isatty(STDOUT_FILENO)) {
    print_error(
        "save: refusing to write an image archive to a terminal; use -o FILE or "
        "redirect stdout");
    return kExitFailure;
  }
  auto store = images::ImageStore::open(runtime::resolve_root(g.root));
  if (!store.ok()) {
    print_error("save: " + store.error().to_string());
    return kExitFailure;
  }
  std::vector<images::ImageRecord> records;
  for (const auto& name : names) {
    auto ref = image::parse_reference(name);
    Result<std::optional<images::ImageRecord>> found =
        ref.ok() ? store->find(*ref) : Result<std::optional<images::ImageRecord>>(ref.error());
    // The embedded image is in the store only once something used it.
    if (found.ok() && !*found) found = load_embedded(*store, *ref);
    if (!found.ok()) {
      print_error("save: " + found.error().to_string());
      return kExitFailure;
    }
    if (!*found) {
      print_error("save: no such image: '" + ref->familiar() + "'");
      return kExitFailure;
    }
    records.push_back(std::move(**found));
  }
  Status s =
      output.empty() ? store->save(records, STDOUT_FILENO) : store->save_file(records, output);
  if (!s.ok()) {
    print_error("save" + (output.empty() ? std::string() : " '" + output + "'") + ": " +
                s.error().to_string());
    return kExitFailure;
  }
  return kExitOk;
}

int list(const std::string& format, bool quiet, const GlobalOptions& g) {
  auto store = images::ImageStore::open(runtime::resolve_root(g.root));
  if (!store.ok()) {
    print_error("image ls: " + store.error().to_string());
    return kExitFailure;
  }
  auto all = store->list();
  if (!all.ok()) {
    print_error("image ls: " + all.error().to_string());
    return kExitFailure;
  }
  if (format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : *all) {
      auto ref = image::parse_reference(r.name);
      out.push_back({{"name", ref.ok() ? ref->familiar() : r.name},
                     {"reference", r.name},
                     {"digest", r.manifest.str()},
                     {"config", r.config.str()},
                     {"platform", r.platform},
                     {"size", r.size}});
    }
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  if (quiet) {
    for (const auto& r : *all)
      std::cout << r.config.short_hex() << "\n";
    return kExitOk;
  }
  std::printf("%-40s %-16s %-14s %s\n", "REPOSITORY", "TAG", "IMAGE ID", "SIZE");
  for (const auto& r : *all) {
    auto ref = image::parse_reference(r.name);
    std::string repo = r.name, tag = "<none>";
    if (ref.ok()) {
      std::string familiar = ref->familiar();
      repo = familiar.substr(0, familiar.rfind(':'));
      tag = ref->tag.empty() ? "<none>" : ref->tag;
      if (ref->digest && ref->tag.empty()) repo = ref->name();
    }
    std::printf("%-40s %-16s %-14s %s\n", repo.c_str(), tag.c_str(), r.config.short_hex().c_str(),
                human_size(static_cast<double>(r.size)).c_str());
  }
  return kExitOk;
}

}  // namespace

Runner add_image(CLI::App& app, const GlobalOptions& global) {
  struct Flags {
    PullFlags pull;
    std::string ref;
    std::string input, name, output;
    std::vector<std::string> refs;
    bool force = false;
    std::string format = "table";
    bool quiet = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* image = app.add_subcommand("image", "Manage images");
  image->require_subcommand(1);
  auto add_pull = [&](CLI::App* parent, const std::string& name, const std::string& help) {
    CLI::App* c = parent->add_subcommand(name, help);
    add_pull_flags(c, f->pull);
    c->add_option("reference", f->ref, "Image reference, e.g. busybox:latest")->required();
    return c;
  };
  auto add_ls = [&](CLI::App* parent, const std::string& name, const std::string& help) {
    CLI::App* c = parent->add_subcommand(name, help);
    c->add_option("--format", f->format, "Output format: table or json")
        ->check(CLI::IsMember({"table", "json"}));
    c->add_flag("-q,--quiet", f->quiet, "Only image IDs");
    return c;
  };
  CLI::App* pull_cmd = add_pull(image, "pull", "Pull an image from a registry");
  CLI::App* ls_cmd = add_ls(image, "ls", "List images");
  CLI::App* load_cmd =
      image->add_subcommand("load", "Load images from an OCI image layout or a docker save tar");
  load_cmd->add_option("-i,--input", f->input,
                       "OCI layout directory, a tar of one, or a docker save tar (default: stdin)");
  load_cmd->add_option("--name", f->name,
                       "Repository for images tagged with a bare tag, or name of an untagged one");
  CLI::App* save_cmd = image->add_subcommand("save", "Save images to an OCI image-layout tar");
  save_cmd->add_option("-o,--output", f->output, "Write to this file (default: stdout)");
  save_cmd->add_option("images", f->refs, "Images")->required();
  CLI::App* tag_cmd = image->add_subcommand("tag", "Give a local image another name");
  tag_cmd->add_option("source", f->ref, "Local image")->required();
  tag_cmd->add_option("target", f->name, "New name")->required();
  CLI::App* rm_cmd = image->add_subcommand("rm", "Remove image names (prune frees the space)");
  rm_cmd->add_option("images", f->refs, "Images")->required();
  rm_cmd->add_flag("-f,--force", f->force, "Remove names even if containers use the image");
  CLI::App* inspect_cmd = image->add_subcommand("inspect", "Show an image's details as JSON");
  inspect_cmd->add_option("image", f->ref, "Image")->required();
  CLI::App* prune_cmd = image->add_subcommand("prune", "Remove blobs and snapshots no image uses");
  CLI::App* push_cmd = image->add_subcommand("push", "Push an image to its registry");
  add_pull_flags(push_cmd, f->pull);
  push_cmd->add_option("image", f->ref, "Image (its name says where to push)")->required();
  CLI::App* pull_alias = add_pull(&app, "pull", "Pull an image (alias of `image pull`)");
  CLI::App* ls_alias = add_ls(&app, "images", "List images (alias of `image ls`)");
  return [=, &global] {
    if (pull_cmd->parsed() || pull_alias->parsed()) return pull(f->ref, f->pull, global);
    if (ls_cmd->parsed() || ls_alias->parsed()) return list(f->format, f->quiet, global);
    if (load_cmd->parsed()) return load(f->input, f->name, global);
    if (save_cmd->parsed()) return save(f->refs, f->output, global);
    if (tag_cmd->parsed()) return tag(f->ref, f->name, global);
    if (rm_cmd->parsed()) return remove(f->refs, f->force, global);
    if (inspect_cmd->parsed()) return inspect(f->ref, global);
    if (prune_cmd->parsed()) return prune(global);
    if (push_cmd->parsed()) return push(f->ref, f->pull, global);
    return kExitUsage;
  };
}

}  // namespace vessel::cli
