#include "load_crash_guard.h"

#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <iterator>
#include <mutex>

namespace qparity::torchfe {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
constexpr const char* kNames[] = {"SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT"};

// The message of the file this thread is reading, or null: signals of crashes are delivered to
// the thread that crashed.
thread_local const std::string* t_message = nullptr;

std::mutex g_mutex;  // guards the two below: the handlers are installed while any guard lives
int g_guards = 0;
struct sigaction g_previous[std::size(kSignals)];

void write_all(const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(STDERR_FILENO, data, size);
    if (n <= 0) return;
    data += n;
    size -= static_cast<size_t>(n);
  }
}

// Only async-signal-safe calls: write(2), _exit(2), sigaction(2), raise(3).
extern "C" void on_crash(int signal) {
  const std::string* message = t_message;
  if (message == nullptr) {  // not a file being read: the crash stays a crash
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(signal, &dfl, nullptr);
    raise(signal);
    return;
  }
  const char* name = "a signal";
  for (size_t i = 0; i < std::size(kSignals); ++i) {
    if (kSignals[i] == signal) name = kNames[i];
  }
  const size_t cut = message->find('%');  // "%" stands for the signal's name
  write_all(message->data(), cut);
  write_all(name, std::char_traits<char>::length(name));
  write_all(message->data() + cut + 1, message->size() - cut - 1);
  _exit(2);
}

}  // namespace

LoadCrashGuard::LoadCrashGuard(const std::string& file, const std::string& writer)
    : message_("qparity model: error: " + file + ": libtorch crashed reading it (%); the file is " +
               "corrupt or was not written by " + writer + "\n"),
      // Unbounded recursion in libtorch ends on the guard page: the handler needs its own stack.
      alternate_stack_(static_cast<size_t>(SIGSTKSZ) * 4, '\0') {
  stack_t stack{};
  stack.ss_sp = alternate_stack_.data();
  stack.ss_size = alternate_stack_.size();
  sigaltstack(&stack, &previous_stack_);
  t_message = &message_;
  const std::lock_guard lock(g_mutex);
  if (g_guards++ > 0) return;
  struct sigaction action {};
  action.sa_handler = on_crash;
  action.sa_flags = SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  for (size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &action, &g_previous[i]);
}

LoadCrashGuard::~LoadCrashGuard() {
  t_message = nullptr;
  sigaltstack(&previous_stack_, nullptr);
  const std::lock_guard lock(g_mutex);
  if (--g_guards > 0) return;
  for (size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &g_previous[i], nullptr);
}

}  // namespace qparity::torchfe
