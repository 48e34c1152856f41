#pragma once

#include <array>
#include <cstddef>
#include <new>

namespace kachel::http {

namespace detail {

/// Blocks of a few sizes kept by each thread for reuse: an HTTP header field (Beast allocates
/// one block per field) is then not a new allocation once a thread has served a few requests.
/// A block freed on another thread than the one that made it simply joins that thread's lists.
class field_block_pool {
  public:
    static constexpr std::array<std::size_t, 4> sizes{64, 128, 256, 512};
    static constexpr std::size_t kept_per_size = 256;

    static void* allocate(std::size_t bytes) {
        auto const c = size_class(bytes);
        if (c == sizes.size()) {
            return ::operator new(bytes);
        }
        auto& pool = local();
        if (auto* block = pool.free[c]) {
            pool.free[c] = block->next;
            --pool.count[c];
            return block;
        }
        return ::operator new(sizes[c]);
    }

    static void deallocate(void* p, std::size_t bytes) noexcept {
        auto const c = size_class(bytes);
        if (c == sizes.size()) {
            ::operator delete(p);
            return;
        }
        auto& pool = local();
        if (pool.count[c] >= kept_per_size) {
            ::operator delete(p);
            return;
        }
        pool.free[c] = new (p) node{pool.free[c]};
        ++pool.count[c];
    }

  private:
    struct node {
        node* next;
    };
    struct lists {
        std::array<node*, sizes.size()> free{};
        std::array<std::size_t, sizes.size()> count{};
        lists() = default;
        lists(lists const&) = delete;
        lists& operator=(lists const&) = delete;
        ~lists() {
            for (std::size_t c = 0; c < sizes.size(); ++c) {
                while (free[c] != nullptr) {
                    auto* next = free[c]->next;
                    ::operator delete(free[c]);
                    free[c] = next;
                }
                // A field freed later on this exiting thread goes straight back to the heap.
                count[c] = kept_per_size;
            }
        }
    };

    static std::size_t size_class(std::size_t bytes) noexcept {
        std::size_t c = 0;
        while (c < sizes.size() && bytes > sizes[c]) {
            ++c;
        }
        return c;
    }

    static lists& local() noexcept {
        thread_local lists pool;
        return pool;
    }
};

} // namespace detail

/// The allocator of kachel's request and response header fields (see detail::field_block_pool).
/// Stateless: any two compare equal, so fields move between messages freely.
template <class T>
class field_allocator {
  public:
    using value_type = T;

    field_allocator() noexcept = default;
    template <class U>
    field_allocator(field_allocator<U> const& /*other*/) noexcept {}

    T* allocate(std::size_t n) { return static_cast<T*>(detail::field_block_pool::allocate(n * sizeof(T))); }
    void deallocate(T* p, std::size_t n) noexcept { detail::field_block_pool::deallocate(p, n * sizeof(T)); }

    template <class U>
    bool operator==(field_allocator<U> const& /*other*/) const noexcept {
        return true;
    }
};

} // namespace kachel::http
