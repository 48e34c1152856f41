#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <thread>
#include <vector>

namespace kachel {

/// The event loops: one `io_context` per worker thread, each run by that thread alone. The first
/// is the main loop (startup, signals, accepting), run by the thread that calls run_main(); the
/// others get threads of their own. HTTP connections are spread over all of them, so a
/// connection's handlers always run on one thread, without strands and without contention on a
/// shared queue. An operation may be started on one loop and awaited from another: its handler
/// runs on the executor of the awaiting coroutine.
class event_loops {
  public:
    /// Creates `count` loops (at least one). The further loops keep running until stop() even
    /// while they have no work; the main loop returns when it runs out of work or is stopped.
    explicit event_loops(unsigned count);
    event_loops(event_loops const&) = delete;
    event_loops& operator=(event_loops const&) = delete;
    /// Stops the loops, joins their threads and destroys what they still hold (shut_down()).
    ~event_loops();

    /// The main loop (valid while this object lives).
    [[nodiscard]] boost::asio::io_context& main() noexcept { return *m_loops.front(); }

    /// The loops after the main one (valid while this object lives).
    [[nodiscard]] std::vector<boost::asio::io_context*> others() const;

    /// Starts a thread for each further loop, then runs the main loop on the calling thread until
    /// it returns; then stops the other loops and joins their threads.
    void run_main();

    /// Destroys the handlers every loop still holds (suspended connections, for example), while
    /// all loops exist: a handler of one loop may own objects bound to another. Call it before
    /// destroying what those handlers refer to. Idempotent.
    void shut_down();

  private:
    /// An io_context whose services can be shut down before it is destroyed.
    class loop : public boost::asio::io_context {
      public:
        using io_context::io_context;
        void shut_down() { shutdown(); }
    };
    using work_guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

    void stop_others();

    std::vector<std::unique_ptr<loop>> m_loops;
    std::vector<work_guard> m_guards;
    std::vector<std::jthread> m_threads;
    bool m_shut_down = false;
};

} // namespace kachel
