#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace kachel {

/// True when nothing can write `path`: it lies on a read-only mount, or no one has write
/// permission on it (only a process that overrides permissions could). Such a file can be
/// mapped into memory and trusted not to shrink underneath.
[[nodiscard]] bool nothing_can_write(std::string const& path) noexcept;

/// True when every page of `length` bytes at `start`, inside a mapping of a file, is in memory:
/// touching them cannot wait for a disk.
[[nodiscard]] bool memory_resident(void const* start, std::size_t length) noexcept;

/// A whole file mapped read-only into memory. Its bytes can be sent without a copy and kept
/// alive by a shared_ptr to the mapping. Only for files nothing can write: a file truncated
/// under a mapping kills the process that touches the pages that are gone.
class mapped_file {
  public:
    /// Maps `size` bytes of `fd` (which the caller keeps or closes; the mapping stays).
    /// \returns null when the file cannot be mapped (then read it another way)
    [[nodiscard]] static std::shared_ptr<mapped_file const> map(int fd, std::uint64_t size) noexcept;

    mapped_file(void* start, std::size_t size) noexcept : m_start(start), m_size(size) {}
    ~mapped_file();
    mapped_file(mapped_file const&) = delete;
    mapped_file& operator=(mapped_file const&) = delete;

    [[nodiscard]] std::uint64_t size() const noexcept { return m_size; }

    /// `length` bytes at `offset`. \pre offset + length <= size()
    [[nodiscard]] std::string_view bytes(std::uint64_t offset, std::uint64_t length) const noexcept;

    /// True when every page of the range is in memory: reading it cannot wait for a disk.
    [[nodiscard]] bool resident(std::uint64_t offset, std::uint64_t length) const noexcept;

  private:
    void* m_start;
    std::size_t m_size;
};

} // namespace kachel
