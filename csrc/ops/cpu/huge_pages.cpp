#include "huge_pages.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace dynamo_ext {
namespace ops {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t cache_capacity() {
  const char* env = std::getenv("DYNAMO_EXT_CPU_BUFFER_CACHE_MB");
  const size_t mb = env != nullptr ? static_cast<size_t>(std::strtoull(env, nullptr, 10)) : 1024;
  return mb << 20;
}

void* allocate(size_t bytes) {
  void* p = std::aligned_alloc(kHugePage, bytes);
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, bytes, MADV_HUGEPAGE);  // advisory: an error only means 4 KiB pages
#endif
  return p;
}

// Freed buffers, most recent last. A request takes the smallest cached buffer
// that holds it without wasting more than half; giving back evicts the oldest
// buffers beyond the capacity.
class BufferCache {
 public:
  // returns nullptr, or a buffer and (in `bytes`) its size
  void* take(size_t& bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t best = free_.size();
    for (size_t i = 0; i < free_.size(); ++i) {
      const size_t size = free_[i].size;
      if (size >= bytes && size <= 2 * bytes && (best == free_.size() || size < free_[best].size)) best = i;
    }
    if (best == free_.size()) return nullptr;
    void* p = free_[best].ptr;
    bytes = free_[best].size;
    held_ -= bytes;
    free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
    return p;
  }

  void give(void* p, size_t bytes) {
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (bytes > capacity_) {
        evicted.push_back(p);
      } else {
        free_.push_back({p, bytes});
        held_ += bytes;
        while (held_ > capacity_) {
          evicted.push_back(free_.front().ptr);
          held_ -= free_.front().size;
          free_.erase(free_.begin());
        }
      }
    }
    for (void* q : evicted) std::free(q);
  }

 private:
  struct Entry {
    void* ptr;
    size_t size;
  };
  std::mutex mutex_;
  std::vector<Entry> free_;
  size_t held_ = 0;
  const size_t capacity_ = cache_capacity();
};

// never destroyed: tensors may outlive static destruction at exit
BufferCache& cache() {
  static BufferCache* instance = new BufferCache();
  return *instance;
}

}  // namespace

at::Tensor empty_huge_pages(at::IntArrayRef sizes, const at::TensorOptions& options) {
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  const size_t nbytes = static_cast<size_t>(numel) * options.dtype().itemsize();
  if (nbytes < kHugePage || !options.device().is_cpu()) return at::empty(sizes, options);
  size_t bytes = (nbytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = cache().take(bytes);
  if (p == nullptr) {
    p = allocate(bytes);
  }
  return at::from_blob(p, sizes, [bytes](void* q) { cache().give(q, bytes); }, options);
}

}  // namespace ops
}  // namespace dynamo_ext
