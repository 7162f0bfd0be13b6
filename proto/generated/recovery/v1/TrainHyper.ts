// Original file: proto/recovery.proto


export interface TrainHyper {
  'clip_low'?: (number | string);
  'clip_high'?: (number | string);
  'beta'?: (number | string);
  'lr'?: (number | string);
  '_clip_low'?: "clip_low";
  '_clip_high'?: "clip_high";
  '_beta'?: "beta";
  '_lr'?: "lr";
}

export interface TrainHyper__Output {
  'clip_low'?: (number);
  'clip_high'?: (number);
  'beta'?: (number);
  'lr'?: (number);
  '_clip_low'?: "clip_low";
  '_clip_high'?: "clip_high";
  '_beta'?: "beta";
  '_lr'?: "lr";
}
