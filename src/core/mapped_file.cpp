#include "core/mapped_file.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>

namespace kachel {

bool nothing_can_write(std::string const& path) noexcept {
    struct statvfs fs {};
    if (::statvfs(path.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY) != 0) {
        return true;
    }
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0;
}

std::shared_ptr<mapped_file const> mapped_file::map(int fd, std::uint64_t size) noexcept {
    if (size == 0 || size > std::uint64_t{SIZE_MAX}) {
        return nullptr;
    }
    void* const start = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_SHARED, fd, 0);
    if (start == MAP_FAILED) {
        return nullptr;
    }
    try {
        return std::make_shared<mapped_file const>(start, static_cast<std::size_t>(size));
    } catch (...) {
        ::munmap(start, static_cast<std::size_t>(size));
        return nullptr;
    }
}

mapped_file::~mapped_file() {
    ::munmap(m_start, m_size);
}

std::string_view mapped_file::bytes(std::uint64_t offset, std::uint64_t length) const noexcept {
    return {static_cast<char const*>(m_start) + offset, static_cast<std::size_t>(length)};
}

bool memory_resident(void const* start, std::size_t length) noexcept {
    if (length == 0) {
        return true;
    }
    static auto const page_size = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    // NOLINTNEXTLINE(*-reinterpret-cast): the offset into its page
    auto const into_page = reinterpret_cast<std::uintptr_t>(start) % page_size;
    auto const* const first = static_cast<char const*>(start) - into_page;
    auto const pages = (into_page + length + page_size - 1) / page_size;
    std::array<unsigned char, 256> in_memory{}; // a range of up to 1 MiB per call (4 KiB pages)
    for (std::uintptr_t done = 0; done < pages; done += in_memory.size()) {
        auto const count = std::min<std::uintptr_t>(pages - done, in_memory.size());
        // NOLINTNEXTLINE(*-const-cast): mincore only looks at the addresses
        auto* const at = const_cast<char*>(first + done * page_size);
        if (::mincore(at, static_cast<std::size_t>(count * page_size), in_memory.data()) != 0) {
            return false;
        }
        for (std::uintptr_t i = 0; i < count; ++i) {
            if ((in_memory[i] & 1U) == 0) {
                return false;
            }
        }
    }
    return true;
}

bool mapped_file::resident(std::uint64_t offset, std::uint64_t length) const noexcept {
    return memory_resident(static_cast<char const*>(m_start) + offset, static_cast<std::size_t>(length));
}

} // namespace kachel
