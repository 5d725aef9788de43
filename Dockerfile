# The app as a container: `make image`. deploy/deploy_test.go runs the build
# stage's go build exactly as written here and checks the result is static.

# The Go release go.mod names (the tag follows its patch releases).
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
# Pure Go (SQLite is modernc's), so the binary is static and runs on an image
# with no C library; the cache mounts keep modules and packages between builds.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app

# No shell, no package manager, uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
# The nonroot user's home: writable, so configs/app.yaml's SQLite file
# (data/app.db) can be created beside the configs.
WORKDIR /home/nonroot
COPY --from=build /out/app /usr/local/bin/app
COPY configs ./configs
# The file the app reads unless --config says otherwise: choose another with
# -e APP_CONFIG=configs/amqp.yaml; `docker run IMAGE migrate` runs a command.
ENV APP_CONFIG=configs/app.yaml
# The public API. The admin listener (ops API, /metrics) stays on the
# container's loopback unless -e APP_ADMIN_ADDR=:9090 -e APP_ADMIN_TOKEN=...
# moves it out; publish 9090 then.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["serve"]
