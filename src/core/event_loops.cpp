#include "core/event_loops.hpp"

#include <algorithm>

namespace kachel {

event_loops::event_loops(unsigned count) {
    for (unsigned i = 0; i < std::max(count, 1U); ++i) {
        // Concurrency hint 1: each loop is run by exactly one thread.
        m_loops.push_back(std::make_unique<loop>(1));
        if (i > 0) {
            m_guards.push_back(boost::asio::make_work_guard(*m_loops.back()));
        }
    }
}

event_loops::~event_loops() {
    shut_down();
}

std::vector<boost::asio::io_context*> event_loops::others() const {
    std::vector<boost::asio::io_context*> out;
    for (std::size_t i = 1; i < m_loops.size(); ++i) {
        out.push_back(m_loops[i].get());
    }
    return out;
}

void event_loops::run_main() {
    for (std::size_t i = 1; i < m_loops.size(); ++i) {
        m_threads.emplace_back([&ctx = *m_loops[i]] { ctx.run(); });
    }
    m_loops.front()->run();
    stop_others();
}

void event_loops::stop_others() {
    m_guards.clear();
    for (std::size_t i = 1; i < m_loops.size(); ++i) {
        m_loops[i]->stop();
    }
    m_threads.clear(); // joins
}

void event_loops::shut_down() {
    stop_others();
    if (m_shut_down) {
        return;
    }
    m_shut_down = true;
    for (auto& ctx : m_loops) {
        ctx->shut_down();
    }
}

} // namespace kachel
