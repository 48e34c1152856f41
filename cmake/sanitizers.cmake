# SANITIZE=address,undefined adds the sanitizers to every target compiled after this point.
if(SANITIZE)
  add_compile_options(-fsanitize=${SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${SANITIZE})
endif()
# GCC 12 warns that ThreadSanitizer does not model atomic_thread_fence, which Boost.Asio uses; the
# warning names no defect of ours, and -Werror would stop the build. With ThreadSanitizer at -O2 it
# also warns that a Boost.Asio coroutine frame is freed by "a mismatched allocation function":
# the frame's operator new and operator delete are Asio's own pair (aligned_new, aligned_delete),
# which GCC 12 does not match once they are inlined into a large coroutine. No defect either.
if(SANITIZE MATCHES "thread")
  add_compile_options(-Wno-tsan -Wno-mismatched-new-delete)
endif()
