# A stand-in for swift:VERSION-bookworm where no registry is reachable: the
# local Debian base plus a Swift toolchain copied from this machine.
# deploy/base-images.sh builds it with the toolchain's folder (the one holding
# usr/bin/swift) as the build context.
ARG BASE=localhost/hivemind-base/debian:bookworm-slim
FROM ${BASE}
# What the official image adds: the libraries the toolchain itself loads, and
# what building and linking Swift code on Debian needs.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils gcc libc6-dev libstdc++-12-dev libcurl4-openssl-dev zlib1g-dev \
        libedit2 libncurses6 libxml2 libsqlite3-0 libicu72 libbsd0 tzdata \
    && rm -rf /var/lib/apt/lists/*
COPY usr /opt/swift/usr
ENV PATH=/opt/swift/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN swift --version
