#include "atomic_file.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <system_error>

namespace qparity::cli {
namespace {

// ---------------------------------------------------------------------------------------------
// Named temporaries, for the signal handler: fixed storage, so the handler only reads memory
// and calls unlink() (both async-signal-safe).
constexpr int kMaxNamed = 16;
constexpr size_t kPathBytes = PATH_MAX;
char g_named_paths[kMaxNamed][kPathBytes];
volatile sig_atomic_t g_named_used[kMaxNamed];

int register_named(const std::string& path) {
  if (path.size() >= kPathBytes) return -1;
  for (int i = 0; i < kMaxNamed; ++i) {
    if (g_named_used[i] == 0) {
      std::memcpy(g_named_paths[i], path.c_str(), path.size() + 1);
      std::atomic_signal_fence(std::memory_order_seq_cst);  // the path is whole before it is used
      g_named_used[i] = 1;
      return i;
    }
  }
  return -1;
}

void unregister_named(int slot) {
  if (slot >= 0) g_named_used[slot] = 0;
}

void remove_temporaries_and_die(int signal_number) {
  for (int i = 0; i < kMaxNamed; ++i) {
    if (g_named_used[i] != 0) ::unlink(g_named_paths[i]);
  }
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);  // die of the signal, as without the handler
}

constexpr int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP};

// Blocks the cleanup signals while every temporary is moved into place: a signal arriving then
// is delivered once all reports are complete.
class SignalsHeld {
 public:
  SignalsHeld() {
    sigset_t set;
    sigemptyset(&set);
    for (const int s : kCleanupSignals) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, &previous_);
  }
  ~SignalsHeld() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  SignalsHeld(const SignalsHeld&) = delete;
  SignalsHeld& operator=(const SignalsHeld&) = delete;

 private:
  sigset_t previous_;
};

// ---------------------------------------------------------------------------------------------
mode_t process_umask() {
  // Read once, at the first output check (before any worker thread starts).
  static const mode_t mask = [] {
    const mode_t m = ::umask(0);
    ::umask(m);
    return m;
  }();
  return mask;
}

std::string errno_text(int error) { return std::strerror(error); }

std::string cannot_write(std::string_view option, const std::string& path, const std::string& why) {
  return std::string(option) + ": cannot write '" + path + "': " + why;
}

// Writes all of `data` to `fd`; returns 0 or the errno of the failure.
int write_fd(int fd, std::string_view data) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {  // a non-blocking pipe: wait until it drains
        pollfd pfd{fd, POLLOUT, 0};
        ::poll(&pfd, 1, -1);
        continue;
      }
      return errno;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return 0;
}

bool is_same_node(const struct stat& st, int fd) {
  struct stat other;
  return ::fstat(fd, &other) == 0 && other.st_dev == st.st_dev && other.st_ino == st.st_ino;
}

// ".qparity-XXXXXX.tmp": short, so a target name of up to NAME_MAX bytes still has a temporary.
std::string temporary_name(const std::string& dir) {
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  static std::mt19937_64 rng{std::random_device{}()};
  std::string name = dir + "/.qparity-";
  for (int i = 0; i < 6; ++i) name += kChars[rng() % (sizeof kChars - 1)];
  return name + ".tmp";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
struct OutputFiles::Output {
  enum class Kind { kFile, kStream, kStdout, kStderr };

  std::string option;
  std::string path;    // as the user gave it, for messages
  Kind kind = Kind::kFile;
  std::string target;  // kFile: the file replaced (symbolic links resolved)
  std::string dir;     // kFile: its directory
  mode_t mode = 0644;  // kFile: the existing file's permissions, or 0666 less the umask
  bool existed = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::optional<std::string> content;
  int fd = -1;       // kFile: the temporary, once written
  bool placed_new = false;  // kFile: linked straight to the (new) target
  std::string temp;  // kFile: its name, once it has one
  int slot = -1;     // its slot in the signal handler's list

  Output() = default;
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;
  ~Output() {
    if (fd >= 0) ::close(fd);
    drop_temp_name();
  }

  [[noreturn]] void fail(const std::string& why) const {
    throw std::runtime_error(cannot_write(option, path, why));
  }

  void drop_temp_name() {
    if (!temp.empty()) ::unlink(temp.c_str());
    unregister_named(slot);
    slot = -1;
    temp.clear();
  }

  // A named temporary in `dir` (mkstemps), registered for the signal handler; -1 and errno set
  // on failure.
  int create_named() {
    std::string pattern = dir + "/.qparity-XXXXXX.tmp";
    const int f = ::mkstemps(pattern.data(), 4);
    if (f < 0) return -1;
    ::fcntl(f, F_SETFD, FD_CLOEXEC);
    temp = pattern;
    slot = register_named(temp);
    return f;
  }

  // Step 1: the whole content in a temporary with the final permissions, on disk.
  void stage() {
    fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) fd = create_named();  // no O_TMPFILE on this filesystem
    if (fd < 0) fail(errno_text(errno));
    if (const int e = write_fd(fd, *content); e != 0) fail(errno_text(e));
    if (existed && ::geteuid() == 0) (void)::fchown(fd, uid, gid);  // keep the owner when root
    if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) fail(errno_text(errno));
  }

  // Links the unnamed temporary to `name`; 0 or the errno of the failure.
  int link_to(const std::string& name) const {
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH on older kernels; /proc/self/fd works for all.
    if (::linkat(fd, "", AT_FDCWD, name.c_str(), AT_EMPTY_PATH) == 0) return 0;
    if (errno == EEXIST) return EEXIST;
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    return ::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
  }

  // Step 4a. A target that does not exist yet is linked straight into place: the report never
  // has another name, so even SIGKILL leaves nothing (`placed_new`: undone by unlinking it if a
  // later output fails). Replacing a file needs rename(), so the temporary gets a name beside
  // the target, for the few microseconds until step 4b.
  void link_name() {
    if (!temp.empty()) return;  // a named temporary already (no O_TMPFILE here)
    if (!existed) {
      const int e = link_to(target);
      if (e == 0) {
        placed_new = true;
        return;
      }
      if (e != EEXIST) fail_or_rewrite(e);
      if (!temp.empty()) return;
    }
    for (int attempt = 0; attempt < 100; ++attempt) {
      const std::string name = temporary_name(dir);
      slot = register_named(name);
      const int e = link_to(name);
      if (e == 0) {
        temp = name;
        return;
      }
      unregister_named(slot);
      slot = -1;
      if (e == EEXIST) continue;
      fail_or_rewrite(e);
      return;
    }
    fail("no free temporary name");
  }

  // A link that failed: for lack of space an error; otherwise this filesystem cannot name an
  // O_TMPFILE file, and the report is written again to a named temporary.
  void fail_or_rewrite(int error) {
    if (error == ENOSPC || error == EDQUOT || error == EROFS || error == EIO) fail(errno_text(error));
    ::close(fd);
    fd = create_named();
    if (fd < 0) fail(errno_text(errno));
    if (const int e = write_fd(fd, *content); e != 0) fail(errno_text(e));
    if (existed && ::geteuid() == 0) (void)::fchown(fd, uid, gid);
    if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) fail(errno_text(errno));
  }

  // Step 4b.
  void rename_into_place() {
    if (placed_new) return;
    if (::rename(temp.c_str(), target.c_str()) != 0) fail(errno_text(errno));
    unregister_named(slot);
    slot = -1;
    temp.clear();
  }

  // Step 4c: the new names on disk.
  void sync_directory() const {
    if (const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
      (void)::fsync(d);
      ::close(d);
    }
  }

  // Step 3.
  void stream() {
    if (kind == Kind::kStdout || kind == Kind::kStderr) {
      if (const int e = write_fd(kind == Kind::kStdout ? STDOUT_FILENO : STDERR_FILENO, *content); e != 0) {
        fail(errno_text(e));
      }
      return;
    }
    // A FIFO blocks here until a reader opens it, as `cat > fifo` would.
    int f = -1;
    do {
      f = ::open(path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
    } while (f < 0 && errno == EINTR);
    if (f < 0) fail(errno_text(errno));
    const int e = write_fd(f, *content);
    ::close(f);
    if (e != 0) fail(errno_text(e));
  }
};

namespace {

std::invalid_argument refused(std::string_view option, const std::string& path, const std::string& why) {
  return std::invalid_argument(cannot_write(option, path, why));
}

// Whether `dir` takes a new file: an O_TMPFILE probe leaves nothing behind; without O_TMPFILE
// a named probe is created and removed at once.
void probe_directory(std::string_view option, const std::string& path, const std::string& dir) {
  const int probe = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (probe >= 0) {
    ::close(probe);
    return;
  }
  std::string pattern = dir + "/.qparity-XXXXXX.tmp";
  const int named = ::mkstemps(pattern.data(), 4);
  if (named < 0) throw refused(option, path, errno_text(errno));
  const int slot = register_named(pattern);
  ::close(named);
  ::unlink(pattern.c_str());
  unregister_named(slot);
}

}  // namespace

OutputFiles::OutputFiles(const std::vector<Named>& outputs) {
  process_umask();
  for (const auto& [option, given] : outputs) {
    if (!given) continue;
    auto o = std::make_unique<Output>();
    o->option = option;
    o->path = *given;
    const std::string& path = o->path;
    if (path.empty()) throw std::invalid_argument(std::string(option) + ": the file name is empty");
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (is_same_node(st, STDOUT_FILENO)) {
        o->kind = Output::Kind::kStdout;  // e.g. --json /dev/stdout: after the console text
      } else if (is_same_node(st, STDERR_FILENO)) {
        o->kind = Output::Kind::kStderr;
      } else if (S_ISDIR(st.st_mode)) {
        throw refused(option, path, "it is a directory");
      } else if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
        if (::access(path.c_str(), W_OK) != 0) throw refused(option, path, errno_text(errno));
        o->kind = Output::Kind::kStream;
      } else if (!S_ISREG(st.st_mode)) {
        throw refused(option, path, S_ISBLK(st.st_mode) ? "it is a block device"
                                                         : "it is not a regular file, a character "
                                                           "device or a FIFO");
      } else {
        o->existed = true;
        o->mode = st.st_mode & 0777;
        o->uid = st.st_uid;
        o->gid = st.st_gid;
        // Replace the file a symbolic link points to, not the link.
        char* real = ::realpath(path.c_str(), nullptr);
        o->target = real != nullptr ? real : path;
        std::free(real);
      }
    } else if (errno == ENOENT) {
      struct stat link;
      if (::lstat(path.c_str(), &link) == 0) {
        throw refused(option, path, "it is a symbolic link to a file that does not exist");
      }
      o->target = path;
      o->mode = 0666 & ~process_umask();
    } else {
      throw refused(option, path, errno_text(errno));
    }
    if (o->kind == Output::Kind::kFile) {
      const std::filesystem::path parent = std::filesystem::path(o->target).parent_path();
      o->dir = parent.empty() ? std::string(".") : parent.string();
      struct stat ds;
      if (::stat(o->dir.c_str(), &ds) != 0 || !S_ISDIR(ds.st_mode)) {
        throw refused(option, path, "directory '" + o->dir + "' does not exist");
      }
      probe_directory(option, path, o->dir);
    }
    outputs_.push_back(std::move(o));
  }
}

OutputFiles::~OutputFiles() = default;

bool OutputFiles::wants(std::string_view option) const {
  for (const auto& o : outputs_) {
    if (o->option == option) return true;
  }
  return false;
}

void OutputFiles::set(std::string_view option, std::string content) {
  for (const auto& o : outputs_) {
    if (o->option == option) o->content = std::move(content);
  }
}

void OutputFiles::write_all(std::string_view console) {
  using Kind = Output::Kind;
  for (const auto& o : outputs_) {
    if (!o->content) throw std::logic_error(o->option + ": no content was rendered");
  }
  for (const auto& o : outputs_) {
    if (o->kind == Kind::kFile) o->stage();
  }
  write_stdout(console);
  for (const auto& o : outputs_) {
    if (o->kind != Kind::kFile) o->stream();
  }
  const SignalsHeld held;
  try {
    for (const auto& o : outputs_) {
      if (o->kind == Kind::kFile) o->link_name();
    }
  } catch (...) {
    // All or nothing: a new file already linked into place goes again.
    for (const auto& o : outputs_) {
      if (o->placed_new) ::unlink(o->target.c_str());
    }
    throw;
  }
  for (const auto& o : outputs_) {
    if (o->kind == Kind::kFile) o->rename_into_place();
  }
  for (const auto& o : outputs_) {
    if (o->kind == Kind::kFile) o->sync_directory();
  }
}

namespace {

// Two spellings of one path ("o.out", "./o.out", "dir/../o.out") name the same file.
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  const bool ea = ::stat(a.c_str(), &sa) == 0, eb = ::stat(b.c_str(), &sb) == 0;
  if (ea && eb) {
    // Devices and FIFOs take a stream each: /dev/null may be named twice.
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino && S_ISREG(sa.st_mode);
  }
  std::error_code eca, ecb;
  // absolute() first: weakly_canonical leaves a relative path with no existing prefix as it is.
  const auto ca = std::filesystem::weakly_canonical(std::filesystem::absolute(a, eca), eca);
  const auto cb = std::filesystem::weakly_canonical(std::filesystem::absolute(b, ecb), ecb);
  return (!eca && !ecb) ? ca == cb : a == b;
}

}  // namespace

void check_distinct_outputs(const std::vector<OutputFiles::Named>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (size_t j = i + 1; j < outputs.size(); ++j) {
      if (outputs[i].second && outputs[j].second &&
          same_file(*outputs[i].second, *outputs[j].second)) {
        throw std::invalid_argument(std::string(outputs[j].first) + ": '" + *outputs[j].second +
                                    "' is already the " + outputs[i].first + " file");
      }
    }
  }
}

void write_stdout(std::string_view text) {
  if (const int e = write_fd(STDOUT_FILENO, text); e != 0) {
    throw std::runtime_error("cannot write to stdout: " + errno_text(e));
  }
}

void install_output_safeguards() {
  process_umask();
  // A closed standard stream gets a read-only /dev/null in its place: otherwise the next file
  // opened (a report's temporary) would become "stdout" and receive the console text. Writes to
  // the placeholder fail with EBADF, as writes to the closed stream would.
  for (const int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      const int placeholder = ::open("/dev/null", O_RDONLY);
      if (placeholder >= 0 && placeholder != fd) {
        ::dup2(placeholder, fd);
        ::close(placeholder);
      }
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  for (const int s : kCleanupSignals) {
    struct sigaction previous;
    if (::sigaction(s, nullptr, &previous) != 0 || previous.sa_handler == SIG_IGN) continue;
    struct sigaction action {};
    action.sa_handler = remove_temporaries_and_die;
    sigemptyset(&action.sa_mask);
    for (const int t : kCleanupSignals) sigaddset(&action.sa_mask, t);
    ::sigaction(s, &action, nullptr);
  }
}

}  // namespace qparity::cli
