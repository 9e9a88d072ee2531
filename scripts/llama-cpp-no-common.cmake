# Read by CMake right after project(llama.cpp) when scripts/setup builds llama-cpp-python
# (CMAKE_PROJECT_llama.cpp_INCLUDE). llama-cpp-python forces llama.cpp's `common` library on,
# but its Python package loads only libllama and ggml: skipping `common` (and cpp-httplib,
# which only it uses) saves about 40% of the compile.
set(LLAMA_BUILD_COMMON OFF)
