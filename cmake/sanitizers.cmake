# SANITIZE=address,undefined adds the sanitizers to every target compiled after this point.
if(SANITIZE)
  add_compile_options(-fsanitize=${SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${SANITIZE})
endif()
# GCC 12 warns that ThreadSanitizer does not model atomic_thread_fence, which Boost.Asio uses; the
# warning names no defect of ours, and -Werror would stop the build.
if(SANITIZE MATCHES "thread")
  add_compile_options(-Wno-tsan)
endif()
