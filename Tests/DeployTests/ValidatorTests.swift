import Foundation
import Testing
import TestSupport

/// The deployment files pass their validators, and each validator rejects a
/// broken copy (so a pass means something).
@Suite struct ValidatorTests {
    @Test func dockerfilePassesHadolint() async throws {
        try await DeployTools.requireTool("hadolint")
        let result = try await DeployTools.run(["hadolint", "deploy/Dockerfile", "deploy/base-swift.Dockerfile"])
        #expect(result.status == 0, "hadolint: \(result.stdout)\(result.stderr)")
        // An unpinned base image and a shell-form entrypoint are findings.
        let broken = try DeployTools.brokenCopy(of: "deploy/Dockerfile", replacing: "ENTRYPOINT [\"/usr/local/bin/hivemind-dht\"]",
                                                with: "ENTRYPOINT /usr/local/bin/hivemind-dht")
        #expect(try await DeployTools.run(["hadolint", broken]).status != 0)
    }

    @Test func dockerfileHasATargetPerServiceAndHealthchecks() throws {
        let text = try String(contentsOfFile: Repository.path("deploy/Dockerfile"), encoding: .utf8)
        for target in ["dht", "expert-host", "averager", "gateway"] {
            #expect(text.contains("FROM runtime AS \(target)\n"), "no target \(target)")
            #expect(text.contains("COPY --from=runtime-files /trees/hivemind-\(target) /\n"))
        }
        #expect(text.components(separatedBy: "/healthz").count - 1 == 4)
        #expect(text.contains("USER 10001:10001"))
    }

    @Test func composeFileValidates() async throws {
        try await DeployTools.requireTool("docker-compose")
        // The averagers' run token is a secret the user must give: without it, compose refuses the file.
        let unset = try await DeployTools.run(["env", "-u", "HIVEMIND_RUN_TOKEN", "docker-compose", "-f", "docker-compose.yml", "config", "-q"])
        #expect(unset.status != 0 && unset.stderr.contains("HIVEMIND_RUN_TOKEN"), "\(unset.stderr)")
        let compose = ["env", "HIVEMIND_RUN_TOKEN=test-token", "docker-compose"]
        let result = try await DeployTools.run(compose + ["-f", "docker-compose.yml", "config", "-q"])
        #expect(result.status == 0, "docker-compose config: \(result.stderr)")
        let services = try await DeployTools.run(compose + ["-f", "docker-compose.yml", "config", "--services"])
        let names = Set(services.stdout.split(separator: "\n").map(String.init))
        #expect(names.isSuperset(of: ["dht-1", "dht-2", "dht-3", "expert-host", "averager-1", "averager-2", "gateway"]))
        // A depends_on condition compose does not know is an error.
        let broken = try DeployTools.brokenCopy(of: "docker-compose.yml", replacing: "condition: service_healthy", with: "condition: service_happy")
        #expect(try await DeployTools.run(compose + ["-f", broken, "config", "-q"]).status != 0)
    }

    /// `--scale expert-host=N` needs no fixed host port and no container name;
    /// Prometheus scrapes exactly the compose services at the ports they expose.
    @Test func composeScalesExpertHostsAndPrometheusFitsIt() async throws {
        let script = """
        import sys, yaml
        compose = yaml.safe_load(open(sys.argv[1]))
        prometheus = yaml.safe_load(open(sys.argv[2]))
        services = compose["services"]
        host = services["expert-host"]
        assert "ports" not in host and "container_name" not in host, "expert-host must not fix a host port or name"
        assert services["gateway"]["ports"] == ["${GATEWAY_PORT:-8080}:8080"], services["gateway"].get("ports")
        scraped = set()
        for job in prometheus["scrape_configs"]:
            for static in job.get("static_configs", []):
                scraped.update(static["targets"])
            for dns in job.get("dns_sd_configs", []):
                scraped.update(f"{name}:{dns['port']}" for name in dns["names"])
        def port(service):
            return service["expose"][0] if "expose" in service else service["ports"][0].split(":")[-1]
        mesh = {f"{name}:{port(service)}" for name, service in services.items() if "profiles" not in service}
        assert scraped == mesh, f"prometheus scrapes {sorted(scraped)}, compose runs {sorted(mesh)}"
        print("ok")
        """
        let result = try await DeployTools.run(["python3", "-c", script, "docker-compose.yml", "deploy/prometheus.yml"])
        #expect(result.status == 0 && result.stdout == "ok\n", "\(result.stderr)")
    }

    @Test func kubernetesManifestsValidate() async throws {
        try await DeployTools.requireTool("kubernetes-validate")
        let manifests = try FileManager.default.contentsOfDirectory(atPath: Repository.path("deploy/k8s"))
            .filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(manifests == ["averager.yaml", "dht.yaml", "expert-host.yaml", "gateway.yaml"])
        for manifest in manifests {
            let result = try await DeployTools.run(["kubernetes-validate", "--strict", "deploy/k8s/\(manifest)"])
            #expect(result.status == 0, "\(manifest): \(result.stdout)\(result.stderr)")
            #expect(!result.stdout.contains("ERROR") && !result.stderr.contains("ERROR"), "\(manifest): \(result.stdout)")
        }
        let broken = try DeployTools.brokenCopy(of: "deploy/k8s/dht.yaml", replacing: "replicas: 3", with: "replicaz: 3")
        #expect(try await DeployTools.run(["kubernetes-validate", "--strict", broken]).status != 0)
    }

    /// Every manifest's workload has readiness and liveness probes and resources.
    @Test func kubernetesWorkloadsHaveProbesAndResources() async throws {
        let script = """
        import glob, sys, yaml
        kinds = set()
        for path in sorted(glob.glob("deploy/k8s/*.yaml")):
            for document in yaml.safe_load_all(open(path)):
                kinds.add(document["kind"])
                if document["kind"] not in ("Deployment", "StatefulSet"):
                    continue
                for container in document["spec"]["template"]["spec"]["containers"]:
                    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", path
                    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", path
                    assert container["resources"]["requests"] and container["resources"]["limits"], path
        assert {"StatefulSet", "Deployment", "HorizontalPodAutoscaler", "Service", "PersistentVolumeClaim"} <= kinds, kinds
        print("ok")
        """
        let result = try await DeployTools.run(["python3", "-c", script])
        #expect(result.status == 0 && result.stdout == "ok\n", "\(result.stderr)")
    }
}
