#include "worker/password_verifier.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <memory>
#include <system_error>

#include "common/log.h"

namespace worker {

namespace {

// How often overdue jobs are looked for, at most: max_wait is honoured to
// within this (and the threads skip an overdue job they pick up anyway).
constexpr std::chrono::milliseconds kSweepInterval{250};
constexpr int kThreadNiceIncrement = 5;

// Overwrites every byte the string owns, up to its capacity: a string that
// was shortened, or a short one moved from, still holds old bytes there.
void cleanse(std::string& text) noexcept {
    text.resize(text.capacity());
    OPENSSL_cleanse(text.data(), text.size());
    text.clear();
}

}  // namespace

PasswordVerifier::Secret::Secret(std::string&& text) noexcept : text_(std::move(text)) {
    cleanse(text);
}

PasswordVerifier::Secret::Secret(Secret&& other) noexcept : text_(std::move(other.text_)) {
    other.wipe();
}

PasswordVerifier::Secret& PasswordVerifier::Secret::operator=(Secret&& other) noexcept {
    if (this != &other) {
        wipe();
        text_ = std::move(other.text_);
        other.wipe();
    }
    return *this;
}

void PasswordVerifier::Secret::wipe() noexcept {
    cleanse(text_);
}

// ---- construction and shutdown ----

PasswordVerifier::PasswordVerifier(event_base* base, Limits limits)
    : base_(base),
      limits_(limits),
      answer_event_(evtimer_new(base, on_answers, this)),
      sweep_event_(evtimer_new(base, on_sweep, this)) {
    limits_.threads = std::max<size_t>(limits_.threads, 1);
    if (!answer_event_ || !sweep_event_) {
        LOG_ERROR("evtimer_new() failed while starting the password verifier");
        return;
    }
    ok_ = start_wakeup() && start_threads(limits_.threads);
}

PasswordVerifier::~PasswordVerifier() {
    stop_threads();
    // The callbacks die unrun. Their captures may call cancel() as they are
    // destroyed, so they die out of the map, while every member still lives.
    auto tickets = std::move(tickets_);
    tickets_.clear();
}

bool PasswordVerifier::start_wakeup() {
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        int error = errno;
        LOG_ERROR("eventfd() failed while starting the password verifier (%d: %s)", error,
                  std::strerror(error));
        return false;
    }
    wakeup_fd_.reset(fd);
    wakeup_event_.reset(event_new(base_, fd, EV_READ | EV_PERSIST, on_wakeup, this));
    if (!wakeup_event_ || event_add(wakeup_event_.get(), nullptr) != 0) {
        LOG_ERROR("event_new() failed while starting the password verifier");
        return false;
    }
    return true;
}

// The threads inherit the creator's signal mask: all blocked while they are
// made, so a signal meant for the loop (SIGTERM, SIGHUP...) is never taken
// by a crypt thread; the loop's own mask is restored afterwards.
bool PasswordVerifier::start_threads(size_t count) {
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    std::string failure;
    try {
        while (threads_.size() < count) threads_.emplace_back([this] { thread_main(); });
    } catch (const std::system_error& e) {
        failure = e.what();
    }
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    if (!failure.empty()) {
        LOG_ERROR("cannot start password verification thread %zu of %zu (%s)", threads_.size() + 1,
                  count, failure.c_str());
        return false;
    }
    return true;
}

void PasswordVerifier::stop_threads() noexcept {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    work_ready_.notify_all();
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
}

// ---- the threads ----

void PasswordVerifier::thread_main() noexcept {
    pthread_setname_np(pthread_self(), "proxyd-crypt");
    // Per thread on Linux (the "process" of PRIO_PROCESS is the thread id).
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    if (errno == 0) {
        setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()),
                    std::min(nice + kThreadNiceIncrement, 19));
    }
    // struct crypt_data is 32 KiB: one per thread, zeroed once and reused,
    // rather than one per job or on the thread's stack.
    auto data = std::make_unique<crypt_data>();
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            work_ready_.wait(lock, [this] { return stopping_ || !thread_queue_.empty(); });
            // Queued jobs are left to the destructor: only the running ones finish.
            if (stopping_) break;
            job = std::move(thread_queue_.front());
            thread_queue_.pop_front();
        }
        Verdict verdict = std::chrono::steady_clock::now() >= job.deadline
                              ? Verdict::kTimeout
                              : check(job.hash, job.password.text(), *data);
        post({job.ticket, std::move(job.client_key), verdict});
    }
    OPENSSL_cleanse(data.get(), sizeof *data);
}

// crypt(3) takes C strings: a password with a NUL byte would be checked
// truncated, so it never matches. A NULL or "*..." output is a setting crypt
// does not know. The comparison takes the same time wherever the outputs
// differ; their lengths are public (the hash's format fixes them).
PasswordVerifier::Verdict PasswordVerifier::check(const std::string& hash,
                                                  const std::string& password,
                                                  crypt_data& data) noexcept {
    if (password.find('\0') != std::string::npos) return Verdict::kMismatch;
    const char* output = crypt_rn(password.c_str(), hash.c_str(), &data, sizeof data);
    Verdict verdict = Verdict::kMismatch;
    if (output != nullptr && output[0] != '*') {
        size_t length = std::strlen(output);
        if (length == hash.size() && CRYPTO_memcmp(output, hash.data(), length) == 0) {
            verdict = Verdict::kMatch;
        }
    }
    OPENSSL_cleanse(data.output, sizeof data.output);
    return verdict;
}

// One eventfd write per batch: a write is made only when none is pending
// since the loop last took the results.
void PasswordVerifier::post(Result result) noexcept {
    bool signal = false;
    {
        std::lock_guard lock(mutex_);
        results_.push_back(std::move(result));
        signal = !wakeup_signalled_;
        wakeup_signalled_ = true;
    }
    if (signal) {
        uint64_t one = 1;
        // Fails only if the counter would overflow, which coalescing rules out.
        [[maybe_unused]] ssize_t written = ::write(wakeup_fd_.get(), &one, sizeof one);
    }
}

// ---- the loop side ----

uint64_t PasswordVerifier::verify(std::string_view client_key, std::string hash,
                                  std::string password, Callback done) {
    Secret secret(std::move(password));
    if (!answer_event_) return 0;
    uint64_t ticket = next_ticket_++;
    if (!ok_) {
        answer_later(ticket, std::move(done), Verdict::kError);
        return ticket;
    }
    std::string key(client_key);
    auto client = clients_.find(key);
    size_t mine = client == clients_.end()
                      ? 0
                      : client->second.waiting.size() + (client->second.dispatched ? 1 : 0);
    if (pending_ >= limits_.total_pending || mine >= limits_.per_client_pending) {
        answer_later(ticket, std::move(done), Verdict::kBusy);
        return ticket;
    }
    Job job{ticket, std::chrono::steady_clock::now() + limits_.max_wait, key, std::move(hash),
            std::move(secret)};
    Client& entry = clients_[key];
    Stage stage = entry.dispatched ? Stage::kWaiting : Stage::kDispatched;
    tickets_.emplace(ticket, Ticket{key, std::move(done), stage});
    pending_++;
    if (entry.dispatched) {
        entry.waiting.push_back(std::move(job));
    } else {
        entry.dispatched = true;
        dispatch(std::move(job));
    }
    arm_sweep();
    return ticket;
}

void PasswordVerifier::arm_sweep() {
    if (evtimer_pending(sweep_event_.get(), nullptr)) return;
    auto interval = std::min(limits_.max_wait, kSweepInterval);
    timeval tv{static_cast<time_t>(interval.count() / 1000),
               static_cast<suseconds_t>(interval.count() % 1000 * 1000)};
    evtimer_add(sweep_event_.get(), &tv);
}

// Answers kTimeout for every job past its deadline that no thread has
// started: those waiting behind their client's own job, and those in the
// thread queue (whose client's next job then moves up).
void PasswordVerifier::expire_overdue() {
    auto now = std::chrono::steady_clock::now();
    std::vector<Job> overdue;
    for (auto& [key, client] : clients_) {
        auto& waiting = client.waiting;
        auto late = std::stable_partition(waiting.begin(), waiting.end(),
                                          [now](const Job& j) { return j.deadline > now; });
        std::move(late, waiting.end(), std::back_inserter(overdue));
        waiting.erase(late, waiting.end());
    }
    std::vector<Job> taken;
    {
        std::lock_guard lock(mutex_);
        auto late = std::stable_partition(thread_queue_.begin(), thread_queue_.end(),
                                          [now](const Job& j) { return j.deadline > now; });
        std::move(late, thread_queue_.end(), std::back_inserter(taken));
        thread_queue_.erase(late, thread_queue_.end());
    }
    for (Job& job : taken) release(job.client_key);
    std::move(taken.begin(), taken.end(), std::back_inserter(overdue));
    for (Job& job : overdue) {
        pending_--;
        auto ticket = tickets_.find(job.ticket);
        if (ticket == tickets_.end()) continue;
        Callback done = std::move(ticket->second.done);
        tickets_.erase(ticket);
        answer_later(job.ticket, std::move(done), Verdict::kTimeout);
    }
}

void PasswordVerifier::cancel(uint64_t ticket) {
    auto found = tickets_.find(ticket);
    if (found == tickets_.end()) return;
    Ticket entry = std::move(found->second);
    tickets_.erase(found);
    if (entry.stage == Stage::kWaiting) {
        auto client = clients_.find(entry.client_key);
        if (client == clients_.end()) return;
        auto& waiting = client->second.waiting;
        auto job = std::find_if(waiting.begin(), waiting.end(),
                                [ticket](const Job& j) { return j.ticket == ticket; });
        if (job != waiting.end()) {
            waiting.erase(job);
            pending_--;
        }
    } else if (entry.stage == Stage::kDispatched && take_from_thread_queue(ticket)) {
        pending_--;
        release(entry.client_key);
    }
    // A job already hashing keeps its client's slot until its result comes
    // back, then is dropped; a kBusy/kError answer finds no ticket.
}

// Schedules a verdict that needs no thread on a zero timeout: it runs on the
// next loop iteration, after the loop has polled, so a callback that retries
// at once cannot keep the loop from its I/O.
void PasswordVerifier::answer_later(uint64_t ticket, Callback done, Verdict verdict) {
    tickets_.emplace(ticket, Ticket{std::string(), std::move(done), Stage::kAnswered});
    answers_.emplace_back(ticket, verdict);
    timeval now{0, 0};
    event_add(answer_event_.get(), &now);
}

void PasswordVerifier::dispatch(Job job) {
    {
        std::lock_guard lock(mutex_);
        thread_queue_.push_back(std::move(job));
    }
    work_ready_.notify_one();
}

// The client's job on the threads is done (or was taken back): hands its
// next waiting job to the threads, or forgets the client.
void PasswordVerifier::release(const std::string& client_key) {
    auto client = clients_.find(client_key);
    if (client == clients_.end()) return;
    if (client->second.waiting.empty()) {
        clients_.erase(client);
        return;
    }
    Job next = std::move(client->second.waiting.front());
    client->second.waiting.pop_front();
    auto ticket = tickets_.find(next.ticket);
    if (ticket != tickets_.end()) ticket->second.stage = Stage::kDispatched;
    dispatch(std::move(next));
}

// True when the job had not been taken by a thread yet and is now removed.
bool PasswordVerifier::take_from_thread_queue(uint64_t ticket) {
    Job taken;  // destroyed (its password wiped) after the unlock
    std::lock_guard lock(mutex_);
    auto job = std::find_if(thread_queue_.begin(), thread_queue_.end(),
                            [ticket](const Job& j) { return j.ticket == ticket; });
    if (job == thread_queue_.end()) return false;
    taken = std::move(*job);
    thread_queue_.erase(job);
    return true;
}

void PasswordVerifier::deliver(Result& result) {
    pending_--;
    release(result.client_key);
    auto ticket = tickets_.find(result.ticket);
    if (ticket == tickets_.end()) return;  // cancelled
    Callback done = std::move(ticket->second.done);
    tickets_.erase(ticket);
    done(result.verdict);
}

// The eventfd is read before the results are taken, never after: a read
// after the take could swallow the write of a thread that posted in
// between, and its result would wait for some unrelated later wakeup.
void PasswordVerifier::on_wakeup(evutil_socket_t fd, short, void* arg) noexcept {
    auto* self = static_cast<PasswordVerifier*>(arg);
    uint64_t count;
    [[maybe_unused]] ssize_t got = ::read(fd, &count, sizeof count);
    std::vector<Result> results;
    {
        std::lock_guard lock(self->mutex_);
        results.swap(self->results_);
        self->wakeup_signalled_ = false;
    }
    for (Result& result : results) self->deliver(result);
}

void PasswordVerifier::on_sweep(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<PasswordVerifier*>(arg);
    self->expire_overdue();
    if (self->pending_ > 0) self->arm_sweep();
}

void PasswordVerifier::on_answers(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<PasswordVerifier*>(arg);
    std::vector<std::pair<uint64_t, Verdict>> answers;
    answers.swap(self->answers_);
    for (auto [id, verdict] : answers) {
        auto ticket = self->tickets_.find(id);
        if (ticket == self->tickets_.end()) continue;  // cancelled
        Callback done = std::move(ticket->second.done);
        self->tickets_.erase(ticket);
        done(verdict);
    }
}

}  // namespace worker
