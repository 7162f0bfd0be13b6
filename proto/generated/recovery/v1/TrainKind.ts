// Original file: proto/recovery.proto

export const TrainKind = {
  TRAIN_KIND_UNSPECIFIED: 'TRAIN_KIND_UNSPECIFIED',
  SFT: 'SFT',
  GRPO: 'GRPO',
} as const;

export type TrainKind =
  | 'TRAIN_KIND_UNSPECIFIED'
  | 0
  | 'SFT'
  | 1
  | 'GRPO'
  | 2

export type TrainKind__Output = typeof TrainKind[keyof typeof TrainKind]
