import { resolve } from "node:path";

/**
 * A systemd unit for the agent. KillMode=process: stopping or restarting the agent must not kill the services it
 * started (they live in the agent's cgroup); they are re-adopted from their pid files when it comes back.
 */
export function systemdUnit(options: {
  nodePath: string;
  nodeArgs: string[];
  lifelineBin: string;
  configFile: string;
  user?: string;
}): string {
  return `[Unit]
Description=Lifeline agent (signed stop/start of this host's declared services)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=${[options.nodePath, ...options.nodeArgs, options.lifelineBin].join(" ")} agent --config ${resolve(options.configFile)}
${options.user ? `User=${options.user}\n` : ""}Restart=always
RestartSec=2
KillSignal=SIGTERM
KillMode=process
TimeoutStopSec=60
Environment=LIFELINE_LOG_LEVEL=info

[Install]
WantedBy=multi-user.target
`;
}

/**
 * A Windows service definition for WinSW (a service wrapper; Node cannot register itself with the SCM). WinSW's
 * stop sends CTRL+C to the agent, which Node receives as SIGINT: the agent stops gracefully.
 */
export function windowsServiceDefinition(options: {
  nodePath: string;
  nodeArgs: string[];
  lifelineBin: string;
  configFile: string;
}): string {
  return `<service>
  <id>lifeline-agent</id>
  <name>Lifeline agent</name>
  <description>Signed stop/start of this host's declared services</description>
  <executable>${options.nodePath}</executable>
  <arguments>${options.nodeArgs.map((a) => `${a} `).join("")}"${options.lifelineBin}" agent --config "${options.configFile}"</arguments>
  <stoptimeout>60 sec</stoptimeout>
  <onfailure action="restart" delay="2 sec"/>
  <startmode>Automatic</startmode>
  <log mode="roll-by-size"><sizeThreshold>10240</sizeThreshold><keepFiles>5</keepFiles></log>
</service>
`;
}
