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

bool mapped_file::resident(std::uint64_t offset, std::uint64_t length) const noexcept {
    if (length == 0) {
        return true;
    }
    static long const page = ::sysconf(_SC_PAGESIZE);
    auto const page_size = static_cast<std::uint64_t>(page);
    auto const first = offset / page_size * page_size;
    auto const pages = (offset + length - first + page_size - 1) / page_size;
    std::array<unsigned char, 256> in_memory{}; // a range of up to 1 MiB per call (4 KiB pages)
    for (std::uint64_t done = 0; done < pages; done += in_memory.size()) {
        auto const count = std::min<std::uint64_t>(pages - done, in_memory.size());
        auto* const at = static_cast<char*>(m_start) + first + done * page_size;
        if (::mincore(at, static_cast<std::size_t>(count * page_size), in_memory.data()) != 0) {
            return false;
        }
        for (std::uint64_t i = 0; i < count; ++i) {
            if ((in_memory[i] & 1U) == 0) {
                return false;
            }
        }
    }
    return true;
}

} // namespace kachel
