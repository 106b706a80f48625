// Password verification off the event loop. A bcrypt hash at cost 10-12
// takes 50-250 ms; computed on a worker's loop it would stall every session
// of that worker while one client tries wrong passwords. So crypt(3) runs on
// a few threads of the worker process and each verdict comes back to the
// loop as an event (an eventfd), where the caller's callback runs.
//
// Fairness: a client key (the client's IP) has at most one job on the
// threads at a time; its other jobs wait in a per-key FIFO on the loop side,
// and the threads take jobs in FIFO order. A client guessing passwords thus
// queues behind itself: another client's first attempt waits for at most
// about one hash per thread, however many attempts the first has queued.
//
// A job's life, all on the loop thread except "hashing":
//
//   verify() --(client has a job on the threads)--> waiting (per-key FIFO)
//   verify() --(otherwise)--> dispatched (thread queue) --> hashing --> result
//   waiting --(the client's dispatched job ends)--> dispatched
//   result --(wakeup event)--> callback (unless cancelled)
//   verify() --(over a limit, or !ok())--> kBusy / kError on the next iteration
//   waiting or dispatched for max_wait --> kTimeout (swept by a timer on the
//                                          loop; a thread skips such a job too)
//
// The threads log nothing and touch nothing but the thread queue and the
// result list, both under one mutex. They run at a lower priority (nice + 5)
// than the loop: a client guessing passwords must not take CPU time from
// the sessions the worker serves.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/libevent_handles.h"

struct crypt_data;

namespace worker {

class PasswordVerifier {
  public:
    enum class Verdict { kMatch, kMismatch, kBusy, kTimeout, kError };
    using Callback = std::function<void(Verdict)>;
    struct Limits {
        size_t threads = 2;              // verification threads (>= 1; 0 counts as 1)
        size_t per_client_pending = 32;  // jobs one client key may have waiting or running
        size_t total_pending = 4096;     // all jobs waiting or running
        // A job not started within this is answered kTimeout: no client
        // waits without bound behind others' hashes.
        std::chrono::milliseconds max_wait{10000};
    };

    // Starts the threads and the wakeup event on `base`. Create it in the
    // worker process (after fork): threads do not survive fork. The threads
    // block every signal, so the loop's signal handling is unchanged. Logs
    // and leaves ok() false when the eventfd, an event or a thread cannot be
    // made.
    PasswordVerifier(event_base* base, Limits limits);
    // Stops and joins the threads (a running crypt finishes first);
    // callbacks of jobs not delivered yet never run. Must not be called from
    // inside one of this verifier's callbacks.
    ~PasswordVerifier();
    PasswordVerifier(const PasswordVerifier&) = delete;
    PasswordVerifier& operator=(const PasswordVerifier&) = delete;

    // Threads and wakeup created; when false verify() answers kError
    // (asynchronously). Only when not even a timer event could be allocated
    // (out of memory at construction) does verify() return 0 and never run
    // `done`.
    bool ok() const { return ok_; }

    // Verifies `password` against `hash` (a crypt(3) string: $2y$, $2b$,
    // $y$, $6$...) for the client identified by `client_key` (e.g. the
    // client IP without port). `done` runs later on the loop, never inside
    // verify(), with kMatch or kMismatch (also for a hash crypt(3) does not
    // know, and for a password with a NUL byte); kBusy (on the next loop
    // iteration) when the client already has per_client_pending jobs or the
    // verifier total_pending; kError when !ok(). Returns a ticket for
    // cancel() (0 only in the out-of-memory case of ok()). One client key's
    // hashed verdicts come in the order asked. The verifier wipes its copy of
    // `password` once done; the caller's copies are the caller's to wipe.
    //
    // `done` may call verify() and cancel() and may destroy what it owns,
    // but must not destroy the verifier.
    uint64_t verify(std::string_view client_key, std::string hash, std::string password,
                    Callback done);
    // The callback of `ticket` will not run (a job already hashing finishes
    // and is dropped; until then it still counts against its client's limit,
    // so cancelling cannot buy a client a second thread). Unknown or
    // delivered tickets are ignored.
    void cancel(uint64_t ticket);
    // Jobs waiting or running, all clients (cancelled ones still hashing
    // included).
    size_t pending() const { return pending_; }

  private:
    // A password copy that is wiped (OPENSSL_cleanse) when destroyed or
    // moved from, so no stray copy of it stays in freed memory.
    class Secret {
      public:
        Secret() = default;
        explicit Secret(std::string&& text) noexcept;
        Secret(Secret&& other) noexcept;
        Secret& operator=(Secret&& other) noexcept;
        ~Secret() { wipe(); }
        const std::string& text() const { return text_; }

      private:
        void wipe() noexcept;
        std::string text_;
    };

    struct Job {
        uint64_t ticket = 0;
        std::chrono::steady_clock::time_point deadline;  // queued + max_wait
        std::string client_key;
        std::string hash;
        Secret password;
    };
    struct Result {
        uint64_t ticket;
        std::string client_key;
        Verdict verdict;
    };
    // One client key's jobs: `waiting` holds those not yet handed to the
    // threads; `dispatched` is true while one is there. waiting is never
    // non-empty with dispatched false.
    struct Client {
        std::deque<Job> waiting;
        bool dispatched = false;
    };
    enum class Stage { kWaiting, kDispatched, kAnswered };
    struct Ticket {
        std::string client_key;
        Callback done;
        Stage stage;
    };

    bool start_wakeup();
    bool start_threads(size_t count);
    void stop_threads() noexcept;
    void thread_main() noexcept;
    static Verdict check(const std::string& hash, const std::string& password,
                         crypt_data& data) noexcept;
    void post(Result result) noexcept;

    void answer_later(uint64_t ticket, Callback done, Verdict verdict);
    void dispatch(Job job);
    void release(const std::string& client_key);
    bool take_from_thread_queue(uint64_t ticket);
    void deliver(Result& result);
    void expire_overdue();
    void arm_sweep();
    static void on_wakeup(evutil_socket_t fd, short, void* arg) noexcept;
    static void on_sweep(evutil_socket_t, short, void* arg) noexcept;
    static void on_answers(evutil_socket_t, short, void* arg) noexcept;

    // Loop side.
    event_base* base_;
    Limits limits_;
    bool ok_ = false;
    common::UniqueFd wakeup_fd_;
    common::EventPtr wakeup_event_;  // the eventfd is readable: results are in
    common::EventPtr answer_event_;  // kBusy / kError answers, next iteration
    common::EventPtr sweep_event_;   // looks for jobs past max_wait while any wait
    std::vector<std::pair<uint64_t, Verdict>> answers_;
    std::unordered_map<std::string, Client> clients_;
    std::unordered_map<uint64_t, Ticket> tickets_;
    size_t pending_ = 0;
    uint64_t next_ticket_ = 1;

    // Shared with the threads, under mutex_.
    std::mutex mutex_;
    std::condition_variable work_ready_;
    std::deque<Job> thread_queue_;
    std::vector<Result> results_;
    bool wakeup_signalled_ = false;  // an eventfd write is not yet read: coalesce
    bool stopping_ = false;

    std::vector<std::thread> threads_;
};

}  // namespace worker
