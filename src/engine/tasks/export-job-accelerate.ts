/**
 * The exported job's accelerate configs: DDP (accelerate_ddp.yaml) and FSDP (accelerate_fsdp.yaml). Only keys of
 * accelerate's config schema (accelerate/commands/config/config_args.py: ClusterConfig and its fsdp_config), which
 * refuses unknown ones. The machine count, rank and main address are given on the command line for multi-node runs.
 */
import type { JobPlan } from './export-job-script';

/** one `key: value` line; strings that YAML would read as something else are quoted */
function line(k: string, v: string | number | boolean, indent = ''): string {
  const s = typeof v === 'string' && /^(no|yes|true|false|on|off|null|~|[\d.+-].*)$/i.test(v) ? `'${v}'` : String(v);
  return `${indent}${k}: ${s}`;
}

function common(p: JobPlan, type: 'MULTI_GPU' | 'FSDP'): string[] {
  return [
    line('compute_environment', 'LOCAL_MACHINE'),
    line('distributed_type', type),
    line('mixed_precision', 'bf16'),
    line('num_machines', p.nodes),
    line('num_processes', p.gpus * p.nodes),
    line('machine_rank', 0),
    line('main_process_port', 29500),
    line('rdzv_backend', 'static'),
    line('same_network', true),
    line('gpu_ids', 'all'),
    line('use_cpu', false),
    line('debug', false),
  ];
}

export function ddpConfig(p: JobPlan): string {
  return [
    '# Data parallel (DDP): every GPU holds the whole model and trains on its share of each step.',
    `# accelerate launch --config_file accelerate_ddp.yaml train.py`,
    '# num_processes counts the GPUs of all machines; for several machines see README.md ("Several machines").',
    ...common(p, 'MULTI_GPU'),
    '',
  ].join('\n');
}

export function fsdpConfig(p: JobPlan): string {
  return [
    '# Fully sharded data parallel (FSDP): the frozen base is sharded over the GPUs, for a model too big for one.',
    `# accelerate launch --config_file accelerate_fsdp.yaml train.py`,
    `# Layers are wrapped by their class (${p.layerClass}); the adapter is gathered whole before it is saved.`,
    ...common(p, 'FSDP'),
    'fsdp_config:',
    line('fsdp_auto_wrap_policy', 'TRANSFORMER_BASED_WRAP', '  '),
    line('fsdp_transformer_layer_cls_to_wrap', p.layerClass, '  '),
    line('fsdp_sharding_strategy', 'FULL_SHARD', '  '),
    line('fsdp_backward_prefetch', 'BACKWARD_PRE', '  '),
    line('fsdp_forward_prefetch', false, '  '),
    line('fsdp_offload_params', false, '  '),
    line('fsdp_state_dict_type', 'SHARDED_STATE_DICT', '  '),
    line('fsdp_cpu_ram_efficient_loading', true, '  '),
    line('fsdp_sync_module_states', true, '  '),
    // PEFT's FSDP recipe: the LoRA layers are wrapped on their own, so the original parameters need not be kept
    line('fsdp_use_orig_params', false, '  '),
    '',
  ].join('\n');
}
