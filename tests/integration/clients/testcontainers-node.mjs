// What a testcontainers-node (dockerode) user does, against the daemon at
// DOCKER_HOST, with the image named by IMAGE (a busybox with httpd, wget,
// sleep). Each step prints "ok <name>" or "FAIL <name>: <why>"; the exit
// status is 1 if any failed. Run by tests/testcontainers.rs.
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import Docker from "dockerode";
import { GenericContainer, Network, Wait, getContainerRuntimeClient } from "testcontainers";

const IMAGE = process.env.IMAGE;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "tc-node-"));

function check(ok, what) {
  if (!ok) throw new Error(what);
}

function get(url) {
  return new Promise((resolve, reject) =>
    http
      .get(url, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve([res.statusCode, body]));
      })
      .on("error", reject),
  );
}

async function step(name, body) {
  try {
    await body();
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.stack || e}`);
    process.exitCode = 1;
  }
}

const httpd = (dir, port, file, text) => [
  "sh", "-c", `mkdir -p ${dir} && echo ${text} > ${dir}/${file} && exec httpd -f -p ${port} -h ${dir}`,
];

await step("a published port, waited for and reached", async () => {
  const c = await new GenericContainer(IMAGE).withCommand(httpd("/www", 8080, "index.html", "hi")).withExposedPorts(8080).start();
  const [code, body] = await get(`http://${c.getHost()}:${c.getMappedPort(8080)}/index.html`);
  check(code === 200 && body === "hi\n", `GET: ${code} ${JSON.stringify(body)}`);
  await c.stop();
});

await step("a log message waited for, then the log followed", async () => {
  const c = await new GenericContainer(IMAGE)
    .withEnvironment({ GREETING: "hello" })
    .withCommand(["sh", "-c", 'echo starting; sleep 0.3; echo "ready $GREETING"; sleep 300'])
    .withWaitStrategy(Wait.forLogMessage(/ready hello/))
    .start();
  const stream = await c.logs();
  let seen = "";
  await new Promise((resolve) => {
    stream.on("data", (d) => {
      seen += d;
      if (seen.includes("ready hello")) resolve();
    });
    setTimeout(resolve, 5000);
  });
  stream.destroy();
  check(seen.includes("starting\n") && seen.includes("ready hello\n"), `log: ${JSON.stringify(seen)}`);
  await c.stop();
});

await step("healthcheck and HTTP wait strategies", async () => {
  const healthy = await new GenericContainer(IMAGE)
    .withCommand(httpd("/www", 80, "health", "ok"))
    .withHealthCheck({ test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1/health"], interval: 200, timeout: 1000, retries: 20 })
    .withWaitStrategy(Wait.forHealthCheck())
    .start();
  await healthy.stop();
  const served = await new GenericContainer(IMAGE)
    .withCommand(httpd("/www", 80, "health", "ok"))
    .withExposedPorts(80)
    .withWaitStrategy(Wait.forHttp("/health", 80).forStatusCode(200))
    .start();
  await served.stop();
});

await step("exec, files in and out, tmpfs, restart", async () => {
  const c = await new GenericContainer(IMAGE)
    .withCommand(["sleep", "300"])
    .withCopyContentToContainer([{ content: "copied\n", target: "/data/in.txt" }])
    .withTmpFs({ "/scratch": "rw,size=10m" })
    .start();
  let r = await c.exec(["cat", "/data/in.txt"]);
  check(r.exitCode === 0 && r.output === "copied\n", `exec: ${JSON.stringify(r)}`);
  r = await c.exec(["sh", "-c", "grep -c ' /scratch tmpfs' /proc/mounts; echo err >&2; exit 3"]);
  check(r.exitCode === 3 && r.stdout === "1\n" && r.stderr === "err\n", `exec: ${JSON.stringify(r)}`);
  await c.copyContentToContainer([{ content: "later\n", target: "/tmp/later.txt" }]);
  const archive = await c.copyArchiveFromContainer("/tmp/later.txt");
  const chunks = [];
  for await (const chunk of archive) chunks.push(chunk);
  check(Buffer.concat(chunks).includes("later\n"), "the archive holds the file");
  await c.restart();
  r = await c.exec(["cat", "/tmp/later.txt"]);
  check(r.output === "later\n", `after restart: ${JSON.stringify(r)}`);
  await c.stop();
});

await step("files and directories copied before start and after", async () => {
  fs.mkdirSync(`${scratch}/d/sub`, { recursive: true });
  fs.writeFileSync(`${scratch}/d/sub/a.txt`, "A\n");
  fs.writeFileSync(`${scratch}/f.txt`, "F\n");
  const c = await new GenericContainer(IMAGE)
    .withCopyFilesToContainer([{ source: `${scratch}/f.txt`, target: "/srv/f.txt", mode: 0o600 }])
    .withCopyDirectoriesToContainer([{ source: `${scratch}/d`, target: "/srv/d" }])
    .withCommand(["sleep", "300"])
    .start();
  let r = await c.exec(["sh", "-c", "cat /srv/f.txt /srv/d/sub/a.txt; stat -c %a /srv/f.txt"]);
  check(r.output === "F\nA\n600\n", JSON.stringify(r.output));
  await c.copyDirectoriesToContainer([{ source: `${scratch}/d`, target: "/later" }]);
  await c.copyFilesToContainer([{ source: `${scratch}/f.txt`, target: "/later/f2.txt" }]);
  r = await c.exec(["cat", "/later/sub/a.txt", "/later/f2.txt"]);
  check(r.output === "A\nF\n", JSON.stringify(r.output));
  await c.stop();
});

await step("a user network with an alias, and host networking", async () => {
  const network = await new Network().start();
  const server = await new GenericContainer(IMAGE).withNetwork(network).withNetworkAliases("web").withCommand(httpd("/www", 80, "i", "net")).start();
  const client = await new GenericContainer(IMAGE).withNetwork(network).withCommand(["sleep", "300"]).start();
  check(/^\d+\.\d+\.\d+\.\d+$/.test(client.getIpAddress(network.getName())), "an IP on the network");
  const r = await client.exec(["wget", "-q", "-O", "-", "http://web/i"]);
  check(r.output === "net\n", JSON.stringify(r));
  const host = await new GenericContainer(IMAGE).withNetworkMode("host").withCommand(["sleep", "300"]).start();
  await host.stop();
  await client.stop();
  await server.stop();
  await network.stop();
});

await step("an image built from a Dockerfile with build args", async () => {
  const dir = `${scratch}/ctx`;
  fs.mkdirSync(dir);
  fs.writeFileSync(`${dir}/Dockerfile`, `FROM ${IMAGE}\nARG WHO=nobody\nRUN echo built-$WHO > /built\n`);
  const built = await GenericContainer.fromDockerfile(dir).withBuildArgs({ WHO: "tc" }).build("tc-built:1", { deleteOnExit: false });
  const c = await built.withCommand(["sh", "-c", "cat /built; sleep 300"]).withWaitStrategy(Wait.forLogMessage("built-tc")).start();
  await c.stop();
});

await step("create options: entrypoint, workdir, hosts, caps, shm, ulimits, privileged, binds", async () => {
  fs.writeFileSync(`${scratch}/bound`, "bound\n");
  const c = await new GenericContainer(IMAGE)
    .withName("tc-options")
    .withEntrypoint(["sh", "-c"])
    .withCommand(["sleep 300"])
    .withWorkingDir("/tmp")
    .withHostname("tchost")
    .withExtraHosts([{ host: "foo.local", ipAddress: "10.1.2.3" }])
    .withAddedCapabilities("NET_ADMIN")
    .withDroppedCapabilities("CHOWN")
    .withSharedMemorySize(128 * 1024 * 1024)
    .withUlimits({ nofile: { hard: 2048, soft: 1024 } })
    .withBindMounts([{ source: `${scratch}/bound`, target: "/mnt/bound", mode: "ro" }])
    .withResourcesQuota({ memory: 0.25, cpu: 0.5 })
    .withLabels({ team: "berth" })
    .start();
  check(c.getName() === "/tc-options" && c.getLabels().team === "berth", `${c.getName()} ${JSON.stringify(c.getLabels())}`);
  const r = await c.exec(["sh", "-c", "pwd; hostname; grep foo.local /etc/hosts; ulimit -n; cat /mnt/bound; df -m /dev/shm | tail -1"]);
  for (const want of ["/tmp\n", "tchost\n", "10.1.2.3\tfoo.local", "1024\n", "bound\n", " 128 "]) {
    check(r.output.includes(want), `${JSON.stringify(want)} in ${JSON.stringify(r.output)}`);
  }
  await c.stop({ timeout: 1 });
  const p = await new GenericContainer(IMAGE).withPrivilegedMode().withCommand(["sleep", "300"]).start();
  const caps = await p.exec(["grep", "CapEff", "/proc/self/status"]);
  check(caps.exitCode === 0 && !caps.output.includes("0000000000000000"), JSON.stringify(caps));
  await p.stop();
});

await step("commit, reuse", async () => {
  const c = await new GenericContainer(IMAGE).withCommand(["sh", "-c", "echo state > /state; echo done; sleep 300"]).withWaitStrategy(Wait.forLogMessage("done")).start();
  await c.commit({ repo: "tc-committed", tag: "1", deleteOnExit: false });
  await c.stop();
  const again = await new GenericContainer("tc-committed:1").withCommand(["cat", "/state"]).withWaitStrategy(Wait.forLogMessage("state")).start();
  await again.stop();
  const first = await new GenericContainer(IMAGE).withCommand(["sleep", "301"]).withReuse().start();
  const second = await new GenericContainer(IMAGE).withCommand(["sleep", "301"]).withReuse().start();
  check(first.getId() === second.getId(), "withReuse() found the running container");
  await first.stop();
});

await step("dockerode itself: hijacked attach and exec with stdin, resize without a tty", async () => {
  const docker = new Docker(); // DOCKER_HOST
  const c = await docker.createContainer({ Image: IMAGE, Cmd: ["sh", "-c", "read line; echo got-$line; sleep 300"], OpenStdin: true });
  const attached = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
  await c.start();
  attached.write("first\n");
  const seen = await new Promise((resolve) => {
    let got = Buffer.alloc(0);
    attached.on("data", (d) => {
      got = Buffer.concat([got, d]);
      if (got.includes("got-first")) resolve(got);
    });
    setTimeout(() => resolve(got), 5000);
  });
  attached.destroy();
  check(seen.includes("got-first\n"), `attach: ${JSON.stringify(seen.toString("latin1"))}`);
  await c.resize({ h: 40, w: 100 });
  const exec = await c.exec({ Cmd: ["cat"], AttachStdin: true, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: true });
  stream.end("piped\n");
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const out = Buffer.concat(chunks);
  check(out.includes("piped\n"), `exec: ${JSON.stringify(out.toString("latin1"))}`);
  check((await exec.inspect()).ExitCode === 0, "cat ended with 0");
  await c.remove({ force: true });
});

await step("nothing left", async () => {
  const client = await getContainerRuntimeClient();
  const left = await client.container.list();
  check(left.length === 0, `containers left: ${JSON.stringify(left.map((c) => c.Names))}`);
});

fs.rmSync(scratch, { recursive: true, force: true });
