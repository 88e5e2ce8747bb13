//! The bodies of `POST /containers/create`, `POST /containers/{id}/update` and
//! `POST /containers/{id}/exec` are moby's api/types, typed and decoded in berth-api-types
//! (below the engine, as moby's api/types sit below its daemon): the engine takes them
//! decoded. Named here as the engine's modules know them.

pub use berth_api_types::container::{
    Config as CreateBody, DeviceMapping, HealthConfig, HostConfig, LogConfig, PortBinding,
    RestartPolicy as RestartPolicyConfig, StrSlice, ThrottleDevice, Ulimit, UpdateConfig,
    WeightDevice,
};
pub use berth_api_types::exec::ExecConfig;
pub use berth_api_types::network::EndpointSettings;
