# tearsheet-sync: one image for every role (publish, work, depth, migrate, topology apply…).
#
#   docker build -t tearsheet-sync .            # anywhere with a registry: swift:6.3 + debian:12-slim
#   deploy/container/build-image.sh             # here: debootstrapped bases, /opt/swift mounted
#
# BUILD_BASE must carry a Swift 6.2 or later toolchain (the dependencies' manifests need tools
# version 6.2; 6.3 is what the package is tested with) on Debian 12, since the binary links
# Debian 12's librabbitmq, libpq and libcurl. A base without a toolchain works when one is mounted
# at /opt/swift during the build (see build-image.sh).
ARG BUILD_BASE=swift:6.3-bookworm
ARG RUNTIME_BASE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${BUILD_BASE} AS build

# A toolchain mounted at /opt/swift comes first; where there is none (the swift image keeps its
# own in /usr/bin) this entry names no directory and changes nothing.
ENV PATH=/opt/swift/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get -q update \
 && apt-get -q install -y --no-install-recommends \
      librabbitmq-dev libpq-dev libcurl4-openssl-dev pkg-config ca-certificates git \
 && rm -rf /var/lib/apt/lists/*

# Where the Swift packages come from a local mirror instead of GitHub (build-image.sh passes the
# mirror's path; git reads https://github.com/OWNER/NAME from there). Empty: GitHub itself.
ARG GIT_INSTEAD_OF=
RUN if [ -n "$GIT_INSTEAD_OF" ]; then \
      git config --system "url.${GIT_INSTEAD_OF}.insteadOf" https://github.com/; \
    fi

WORKDIR /build

# The manifest alone first: the resolved dependencies stay cached while only sources change.
COPY Package.swift ./
RUN swift package resolve

COPY Sources ./Sources
COPY Tests ./Tests
COPY Benchmarks ./Benchmarks

# The Swift runtime and Foundation linked statically: the runtime image needs no Swift libraries,
# only Debian's C libraries. The DWARF debug info is stripped (the symbol table stays, so
# swift-backtrace-static still names the functions of a crash's backtrace).
RUN swift build -c release --product tearsheet-sync --static-swift-stdlib \
 && mkdir -p /out \
 && cp "$(swift build -c release --show-bin-path)/tearsheet-sync" /out/ \
 && ls -l /out/tearsheet-sync && strip --strip-debug /out/tearsheet-sync && ls -l /out/tearsheet-sync \
 && cp "$(dirname "$(command -v swift)")/../libexec/swift/linux/swift-backtrace-static" /out/swift-backtrace

# ---------------------------------------------------------------------------------------------
FROM ${RUNTIME_BASE}

# The C libraries the binary links (ldd below checks nothing is missing), CA certificates for
# amqps://, sslmode=verify-full and Bullhorn's HTTPS, time zones for Foundation.
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get -q update \
 && apt-get -q install -y --no-install-recommends \
      librabbitmq4 libpq5 libcurl4 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 tsync \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin tsync

COPY --from=build /out/tearsheet-sync /usr/local/bin/tearsheet-sync
COPY --from=build /out/swift-backtrace /usr/local/libexec/swift/swift-backtrace
COPY topology.json /etc/tearsheet-sync/topology.json
RUN if ldd /usr/local/bin/tearsheet-sync | grep 'not found'; then exit 1; fi

ENV TSYNC_TOPOLOGY=/etc/tearsheet-sync/topology.json \
    SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,cache=no,swift-backtrace=/usr/local/libexec/swift/swift-backtrace

USER 10001:10001
ENTRYPOINT ["/usr/local/bin/tearsheet-sync"]
CMD ["--help"]

# Last, so that a new revision rebuilds no layer above.
ARG RUNTIME_BASE
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tearsheet-sync" \
      org.opencontainers.image.description="Keeps recruiting sourcing campaigns in step with Bullhorn tearsheets: publisher, workers, queue monitor, migrations" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${RUNTIME_BASE}"
