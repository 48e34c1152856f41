#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <thread>
#include <utility>

namespace kachel::test {

/// A thread for a test's clients: an exception that escapes `body` fails the running test
/// (gtest's assertions are thread-safe) instead of ending the whole test binary with
/// std::terminate. Joined when it goes out of scope.
template <class TBody>
[[nodiscard]] std::jthread test_thread(TBody body) {
    return std::jthread{[body = std::move(body)]() mutable {
        try {
            body();
        } catch (std::exception const& e) {
            ADD_FAILURE() << "a test thread threw: " << e.what();
        } catch (...) {
            ADD_FAILURE() << "a test thread threw something that is not a std::exception";
        }
    }};
}

} // namespace kachel::test
