#!/usr/bin/env bash
# Packs what the programs of a build need on a bare GPU machine into .devkit/ (git-ignored):
# such a machine has the NVIDIA driver, CUDA, cuBLAS and NCCL, but not the libraries dgqa links
# from Debian (glog, protobuf, OpenBLAS, ...) nor OpenMPI.
#
#   launch/gpu_devkit.sh BUILD_DIR
#
# .devkit/libs   every shared library the ELF files of BUILD_DIR and of OpenMPI need, except the
#                C/C++ runtime and CUDA's own (the GPU machine's must match its loader and driver);
# .devkit/ompi   this machine's OpenMPI (mpirun, its plugins, help and config files) at the same
#                paths below .devkit/ompi, relocated there by OPAL_PREFIX and friends;
# .devkit/env.sh to source there (bash): library path, OpenMPI's relocation, PATH, the machine's
#                CUDA libraries, and mpirun allowed as root and on more ranks than cores.
set -euo pipefail
build=${1:?usage: launch/gpu_devkit.sh BUILD_DIR}
cd "$(dirname "$0")/.."
[[ -d $build ]] || { echo "gpu_devkit.sh: no build directory $build" >&2; exit 2; }
kit=.devkit
rm -rf "$kit"
mkdir -p "$kit/libs" "$kit/ompi"

multiarch=/usr/lib/x86_64-linux-gnu
ompi_parts=(/usr/bin/orterun /usr/bin/orted "$multiarch/openmpi" /usr/share/openmpi /etc/openmpi)
for part in "${ompi_parts[@]}"; do
  [[ -e $part ]] || { echo "gpu_devkit.sh: $part missing (is openmpi-bin installed?)" >&2; exit 2; }
  mkdir -p "$kit/ompi$(dirname "$part")"
  cp -a "$part" "$kit/ompi$part"
done
ln -s orterun "$kit/ompi/usr/bin/mpirun"

machine_own='^(ld-linux[^/]*|libc|libm|libdl|librt|libpthread|libresolv|libgcc_s|libstdc\+\+|libcuda|libcudart|libcublas|libcublasLt|libnccl|libnvrtc|libnvJitLink|libcurand)\.so'
# The resolved libraries of every dynamic ELF file given, one path a line.
needed_libraries() {
  local file
  for file in "$@"; do
    ldd "$file" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' || true
  done
}
mapfile -t elf_files < <(find "$build" "$kit/ompi" -type f \( -perm -u+x -o -name '*.so*' \) \
  -exec sh -c 'file -b "$1" | grep -q "^ELF"' _ {} \; -print)
needed_libraries "${elf_files[@]}" | sort -u | while read -r library; do
  name=$(basename "$library")
  [[ $name =~ $machine_own ]] && continue
  cp -L "$library" "$kit/libs/$name"
done

cat > "$kit/env.sh" <<'ENV'
# Sourced (bash) on the GPU machine, from anywhere: see launch/gpu_devkit.sh.
kit=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ompi=$kit/ompi
export OPAL_PREFIX=$ompi/usr
export OPAL_LIBDIR=$ompi/usr/lib/x86_64-linux-gnu/openmpi/lib
export OPAL_DATADIR=$ompi/usr/share/openmpi OPAL_PKGDATADIR=$ompi/usr/share/openmpi
export OPAL_SYSCONFDIR=$ompi/etc/openmpi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export PATH=$ompi/usr/bin:$PATH
# The machine's CUDA libraries: a toolkit under /usr/local or /opt, or the nvidia-* Python wheels.
cuda_dirs=
for library in libcudart.so.13 libcublasLt.so.13 libnccl.so.2; do
  found=$(find /usr/local/cuda*/ /opt /usr/lib /usr/local/lib -name "$library" 2>/dev/null | head -n 1)
  [[ -n $found ]] && cuda_dirs=$cuda_dirs:$(dirname "$found")
done
export LD_LIBRARY_PATH=$kit/libs:$OPAL_LIBDIR$cuda_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
ENV
du -sh "$kit" | sed 's/^/gpu_devkit.sh: /'
