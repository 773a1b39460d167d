# One image, every role: `orderstream <role>`.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin orderstream

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/orderstream /usr/local/bin/orderstream
ENTRYPOINT ["/usr/local/bin/orderstream"]
