"""The Apogee version for Bazel builds: CMake's is project(apogee VERSION ...)
in CMakeLists.txt, which this must match (scripts/check-build-sync.sh checks).
Targets that report the version take APOGEE_VERSION_DEFINES as local_defines
(CMake: target_compile_definitions(... APOGEE_VERSION="${PROJECT_VERSION}")).
"""

APOGEE_VERSION = "0.1.0"

APOGEE_VERSION_DEFINES = ['APOGEE_VERSION=\\"%s\\"' % APOGEE_VERSION]
